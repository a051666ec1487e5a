from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand

from courses.format import load_course
from courses.models import Membership
from courses.services import course_import, membership_set
from courses.signals import course_imported

DEMO_USERS = {
    # username: (password, role)
    "student": ("learn-derivatives", Membership.Role.STUDENT),
    "faculty": ("teach-derivatives", Membership.Role.FACULTY),
}


class Command(BaseCommand):
    help = "Load the demo course and create a demo student and a demo faculty login (idempotent)."

    def handle(self, *args, **options):
        settings.TUTOR_BACKGROUND_INLINE = True  # the jobs it starts (the TA index) finish before it exits
        course = course_import(spec=load_course(settings.TUTOR_DEMO_COURSE))
        User = get_user_model()
        for username, (password, role) in DEMO_USERS.items():
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(password)
            if role == Membership.Role.FACULTY:
                # Faculty reach the Django admin for their course content.
                user.is_staff = True
                user.save()
                user.user_permissions.set(Permission.objects.filter(content_type__app_label="courses"))
            else:
                user.save()
            if role == Membership.Role.STUDENT:
                from tutor.services import enrollment_create

                enrollment_create(user=user, course=course)
            else:
                membership_set(user=user, course=course, role=role)
        course_imported.send(sender=self.__class__, course=course)  # the TA-bot indexes the course now
        self.stdout.write(self.style.SUCCESS(f"Demo course {course.title!r} loaded."))
        for username, (password, role) in DEMO_USERS.items():
            self.stdout.write(f"  {role:8} login: {username} / {password}")
