"""``python manage.py launch_campaign --config FILE.toml | --preset demo [--wait]``."""

from __future__ import annotations

import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import InterfaceError, OperationalError, connection
from tqdm import tqdm

from discovery.campaign_config import PRESETS, CampaignConfigError, load_toml
from discovery.models import Campaign
from discovery.services.campaigns import create_campaign, deployment_backends, launch_campaign, validate_config

FINAL = (Campaign.Status.COMPLETED, Campaign.Status.FAILED, Campaign.Status.CANCELLED)


class Command(BaseCommand):
    help = "Create and launch a discovery campaign from a TOML file or a preset; --wait follows it to the end."

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--config", type=Path, help="TOML file with a [campaign] table")
        source.add_argument("--preset", choices=sorted(PRESETS), help="a built-in campaign")
        parser.add_argument("--name", help="override the campaign name")
        parser.add_argument("--user", help="staff user launching it (default: the first superuser, else 'gnomon-cli')")
        parser.add_argument("--wait", action="store_true", help="follow the campaign until it finishes")
        parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait at most with --wait")
        parser.add_argument("--min-verified", type=int, default=0,
                            help="with --wait: fail unless at least this many candidates were verified by DFT")

    def handle(self, *args, **options):
        try:
            if options["config"]:
                config = load_toml(options["config"], backends=deployment_backends())
            else:
                config = validate_config(dict(PRESETS[options["preset"]]))
            if options["name"]:
                config.name = options["name"]
            user = self._user(options["user"])
            existing = Campaign.objects.filter(name=config.name).first()
            if existing and options["preset"]:
                config.name = f"{config.name}-{Campaign.objects.filter(name__startswith=config.name).count() + 1}"
            campaign = create_campaign(config, user=user)
            launch_campaign(campaign, user=user)
        except CampaignConfigError as exc:
            raise CommandError(f"invalid campaign: {exc}") from exc
        self.stdout.write(f"campaign '{campaign.name}' (id {campaign.pk}) queued: {config.rounds} round(s)")
        if options["wait"]:
            self._follow(campaign, config.rounds, options["timeout"])
            verified = sum(campaign.rounds.values_list("n_dft_done", flat=True))
            if verified < options["min_verified"]:
                raise CommandError(f"campaign '{campaign.name}' verified {verified} candidate(s) with DFT; "
                                   f"--min-verified asked for {options['min_verified']}")

    def _user(self, username: str | None):
        users = get_user_model().objects
        if username:
            user = users.filter(username=username).first()
            if user is None or not user.is_staff:
                raise CommandError(f"user '{username}' does not exist or is not staff")
            return user
        user = users.filter(is_superuser=True).order_by("pk").first()
        if user is None:
            user, _ = users.get_or_create(username="gnomon-cli", defaults={"is_staff": True})
        return user

    def _follow(self, campaign: Campaign, rounds: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with tqdm(total=rounds, desc=campaign.name, unit="round") as bar:
            while time.monotonic() < deadline:
                try:
                    campaign.refresh_from_db()
                    done = campaign.rounds.filter(stage="done").count()
                    current = campaign.rounds.order_by("-index").first()
                except (OperationalError, InterfaceError):  # the database restarted: the campaign goes on, so wait on
                    connection.close()
                    bar.set_postfix_str("database unreachable; retrying")
                    time.sleep(5)
                    continue
                bar.n = done
                bar.set_postfix_str(f"{campaign.status} · stage {current.stage if current else '-'}")
                bar.refresh()
                if campaign.status in FINAL:
                    break
                time.sleep(2)
        if campaign.status != Campaign.Status.COMPLETED:
            raise CommandError(f"campaign '{campaign.name}' ended {campaign.status}: {campaign.error or 'timed out'}")
        for rnd in campaign.rounds.order_by("index"):
            self.stdout.write(
                f"round {rnd.index}: generated {rnd.n_generated}, selected {rnd.n_selected}, DFT {rnd.n_dft_done} ok / "
                f"{rnd.n_dft_failed} failed, on hull {rnd.n_new_on_hull}, hit rate {rnd.hit_rate}"
            )
