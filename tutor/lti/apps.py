from django.apps import AppConfig


class LtiConfig(AppConfig):
    name = "tutor.lti"
    label = "lti"
    verbose_name = "LTI 1.3 (launch from an LMS)"
    default_auto_field = "django.db.models.BigAutoField"
