"""``python manage.py resume_campaign NAME|ID [--wait]``: resume a paused campaign, or retry a failed one."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from discovery.management.commands.launch_campaign import Command as LaunchCommand
from discovery.models import Campaign
from discovery.services.campaigns import CampaignStateError, campaign_config, resume_campaign


class Command(BaseCommand):
    help = ("Resume a paused campaign, or retry a failed one from the stage that failed (the failed stage's writes "
            "were rolled back, so it simply runs again); --wait follows it to the end.")

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign name or id")
        parser.add_argument("--user", help="staff user (default: the first superuser, else 'gnomon-cli')")
        parser.add_argument("--wait", action="store_true", help="follow the campaign until it finishes")
        parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait at most with --wait")

    def handle(self, *args, **options):
        key = options["campaign"]
        campaign = Campaign.objects.filter(name=key).first() or (
            Campaign.objects.filter(pk=int(key)).first() if key.isdigit() else None
        )
        if campaign is None:
            raise CommandError(f"no campaign named or numbered '{key}'")
        launcher = LaunchCommand(stdout=self.stdout, stderr=self.stderr)
        previous = f"{campaign.status}" + (f" ({campaign.error})" if campaign.error else "")
        try:
            campaign = resume_campaign(campaign, user=launcher._user(options["user"]))
        except CampaignStateError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"campaign '{campaign.name}' (id {campaign.pk}) queued again; it was {previous}")
        if options["wait"]:
            launcher._follow(campaign, campaign_config(campaign).rounds, options["timeout"])
