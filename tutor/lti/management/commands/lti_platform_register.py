"""Register an LMS (an LTI 1.3 platform) with the tool, or update its registration. Idempotent."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tutor.lti import selectors, services


class Command(BaseCommand):
    help = "Register an LTI 1.3 platform (Canvas, Moodle, ...): issuer, client id, deployment ids and endpoints."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="what admins call it, e.g. 'Canvas (production)'")
        parser.add_argument("--issuer", required=True, help="the platform's iss, e.g. https://canvas.instructure.com")
        parser.add_argument("--client-id", required=True, help="the client id the platform gave this tool")
        parser.add_argument("--deployment-id", action="append", default=[], required=True,
                            help="a deployment id the platform sends (repeat for several)")
        parser.add_argument("--keyset-url", required=True, help="the platform's public keyset (JWKS) URL")
        parser.add_argument("--login-url", required=True, help="the platform's OIDC authorization endpoint")
        parser.add_argument("--token-url", required=True, help="the platform's OAuth2 access token endpoint")
        parser.add_argument("--audience", default="", help="the token endpoint's audience, if not its URL")
        parser.add_argument("--frame-origin", action="append", default=None,
                            help="another origin that frames the tool (Canvas: https://<school>.instructure.com)")
        parser.add_argument("--course", action="append", default=None,
                            help="a course (slug) its teachers may link and so become faculty of (repeat for several)")
        parser.add_argument("--any-course", action="store_true", default=None,
                            help="its teachers may link every course on the tutor (trust the whole LMS)")
        parser.add_argument("--site", default="", help="this tool's public URL, to print what to paste into the LMS")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            platform = services.platform_register(
                name=options["name"], issuer=options["issuer"], client_id=options["client_id"],
                auth_login_url=options["login_url"], auth_token_url=options["token_url"],
                key_set_url=options["keyset_url"], deployment_ids=options["deployment_id"],
                auth_audience=options["audience"], frame_origins=options["frame_origin"],
                courses=options["course"], any_course=options["any_course"])
        except ValidationError as exc:
            raise CommandError("; ".join(f"{field}: {' '.join(errors)}"
                                         for field, errors in exc.message_dict.items())) from None
        deployments = ", ".join(platform.deployments.values_list("deployment_id", flat=True))
        self.stdout.write(f"registered {platform} with deployments {deployments}; may frame the tool: "
                          f"{', '.join(platform.framing_origins())}")
        if options["site"]:
            urls = selectors.tool_urls(base=options["site"])
            self.stdout.write(f"login URL:  {urls.login}\nlaunch URL: {urls.launch}\nkeyset URL: {urls.jwks}\n"
                              f"Canvas JSON: {urls.canvas_config}")
