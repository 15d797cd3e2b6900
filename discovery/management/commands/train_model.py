"""python manage.py train_model --scheme S --ensemble K [--epochs N --max-samples M ...]"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.models import Scheme
from discovery.screening.model import ELEMENT_EMBEDDINGS, ModelConfig
from discovery.screening.training import TrainingConfig, TrainingDataError
from discovery.services.screening import train_ensemble


class Command(BaseCommand):
    help = "Train a screening ensemble on one scheme's energies and record it as a ModelVersion."

    def add_arguments(self, parser):
        parser.add_argument("--scheme", required=True, help="scheme name, e.g. dataset:perov5-castelli")
        parser.add_argument("--ensemble", type=int, default=3, help="number of models (K)")
        parser.add_argument("--epochs", type=int, default=50, help="most epochs per model")
        parser.add_argument("--patience", type=int, default=8, help="early stopping: epochs without improvement")
        parser.add_argument("--max-samples", type=int, default=None, help="train on a seeded random subset")
        parser.add_argument("--batch-size", type=int, default=64)
        parser.add_argument("--lr", type=float, default=2e-3)
        parser.add_argument("--architecture", choices=["M3GNet", "TensorNet"], default="M3GNet")
        parser.add_argument("--units", type=int, default=32, help="feature width")
        parser.add_argument("--blocks", type=int, default=2, help="message-passing blocks")
        parser.add_argument("--cutoff", type=float, default=5.0, help="graph cutoff, Å")
        parser.add_argument("--element-embedding", choices=ELEMENT_EMBEDDINGS, default="magpie",
                            help="initial element embeddings: from the Magpie table, or matgl's random draw")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--name", default="", help="name of the model version")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **opts):
        try:
            scheme = Scheme.objects.get(name=opts["scheme"])
        except Scheme.DoesNotExist:
            names = ", ".join(Scheme.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"unknown scheme {opts['scheme']!r}; known schemes: {names}") from None
        for key in ("ensemble", "epochs", "batch_size", "units", "blocks"):
            if opts[key] < 1:
                raise CommandError(f"--{key.replace('_', '-')} must be ≥ 1, got {opts[key]}")
        model_config = ModelConfig(
            architecture=opts["architecture"], units=opts["units"], nblocks=opts["blocks"], cutoff=opts["cutoff"],
            element_embedding=opts["element_embedding"],
        )
        training_config = TrainingConfig(
            epochs=opts["epochs"], batch_size=opts["batch_size"], learning_rate=opts["lr"],
            patience=opts["patience"], seed=opts["seed"],
        )
        total = opts["ensemble"] * opts["epochs"]
        bar = tqdm(total=total, desc="training", unit="epoch", disable=opts["no_progress"], file=sys.stderr)
        epochs_done = [0] * opts["ensemble"]

        def on_epoch(member, record):
            epochs_done[member] = record.epoch
            bar.n = sum(epochs_done)
            bar.set_postfix(model=f"{member + 1}/{opts['ensemble']}", val_mae=f"{record.val_mae:.4f}")
            bar.refresh()

        def on_featurised(count):
            self.stdout.write(f"{count} crystals featurised; training {opts['ensemble']} model(s)")

        try:
            version = train_ensemble(
                scheme,
                ensemble_size=opts["ensemble"],
                model_config=model_config,
                training_config=training_config,
                max_samples=opts["max_samples"],
                name=opts["name"],
                on_epoch=on_epoch,
                on_featurised=on_featurised,
            )
        except TrainingDataError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
        baseline = version.metrics.get("baseline_test_mae")
        self.stdout.write(
            self.style.SUCCESS(
                f"model version {version.pk} ({version.name}): {version.data_count} crystals, "
                f"val MAE {version.validation_mae:.4f}, test MAE {_fmt(version.test_mae)} eV/atom "
                f"(mean predictor {_fmt(baseline)}); {version.metrics['seconds_per_epoch']:.1f} s/epoch; "
                f"weights in {version.weights[0]['path'].rsplit('/', 1)[0]}"
            )
        )


def _fmt(value):
    return "n/a" if value is None else f"{value:.4f}"
