"""python manage.py publish_dumps — full dumps for bulk download at /api/v1/dumps/ (api.dumps)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from api.dumps import publish


class Command(BaseCommand):
    help = ("Write the catalog archive and an OPTIMADE JSON Lines dump of every structure into GNOMON_DUMP_DIR, "
            "served unthrottled at /api/v1/dumps/ (run it from cron or after a campaign).")

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default=settings.GNOMON_OPTIMADE_BASE_URL,
                            help="this server's OPTIMADE base URL, for the resources' self links")

    def handle(self, *args, base_url, **options):
        for entry in publish(settings.GNOMON_DUMP_DIR, base_url.rstrip("/")):
            self.stdout.write(f"{entry['name']}: {entry['bytes']} bytes, sha256 {entry['sha256'][:16]}…")
