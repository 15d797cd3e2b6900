"""Which backend runs a job and which scheme (one protocol) its energies belong to."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings

from catalog.models import ElementalReference, Scheme
from discovery.dft import SchemeSpec, get_backend, get_preset
from discovery.dft.base import load_plugins

logger = logging.getLogger(__name__)


def backend_for(name: str):
    """A backend instance by name; plugin modules (``GNOMON_DFT_BACKEND_PLUGINS``) are imported first."""
    load_plugins(settings.GNOMON_DFT_BACKEND_PLUGINS)
    options = settings.GNOMON_VASP if name == "vasp" else {}
    return get_backend(name, **options)


def ensure_scheme_for(spec: SchemeSpec) -> Scheme:
    from catalog.services.energies import ensure_scheme

    return ensure_scheme(
        spec.name, spec.kind, protocol=spec.protocol or None, level_of_theory=spec.level_of_theory[:200],
        is_dft=spec.is_dft, correction_policy=spec.correction_policy[:200], description=spec.description,
    )


def scheme_for(backend: str, preset: str) -> Scheme:
    return ensure_scheme_for(backend_for(backend).scheme_for(get_preset(preset)))


def missing_elements(scheme: Scheme, elements: Iterable[str]) -> list[str]:
    have = set(ElementalReference.objects.filter(scheme=scheme, element__in=list(elements))
               .values_list("element", flat=True))
    return sorted(set(elements) - have)
