"""Renderers for structure files and export streams, so that ``?format=`` and ``Accept`` both choose them."""

from __future__ import annotations

import json

from rest_framework.renderers import BaseRenderer

from catalog.api.formats import to_cif, to_extxyz, to_poscar


class _StructureFileRenderer(BaseRenderer):
    """Renders the ``structure`` of a serialized material; the view sends errors as JSON (see ``JSONErrorsMixin``)."""

    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return self.convert(data["structure"], data).encode()

    def convert(self, structure, material) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


class CIFRenderer(_StructureFileRenderer):
    media_type = "chemical/x-cif"
    format = "cif"

    def convert(self, structure, material):
        return to_cif(structure)


class POSCARRenderer(_StructureFileRenderer):
    media_type = "text/plain"
    format = "poscar"

    def convert(self, structure, material):
        return to_poscar(structure, comment=f"{material.get('public_id', '')} {material.get('formula_reduced', '')}")


class ExtXYZRenderer(_StructureFileRenderer):
    media_type = "chemical/x-extxyz"
    format = "extxyz"

    def convert(self, structure, material):
        info = {k: material.get(k) for k in ("public_id", "formula_reduced", "energy_above_hull")}
        return to_extxyz(structure, info)


class _StreamRenderer(BaseRenderer):
    """Export formats: the view returns a streaming response itself, so this only names the format."""

    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode()


class JSONLinesRenderer(_StreamRenderer):
    media_type = "application/jsonl"
    format = "jsonl"


class CSVRenderer(_StreamRenderer):
    media_type = "text/csv"
    format = "csv"


class ExtXYZStreamRenderer(_StreamRenderer):
    media_type = "chemical/x-extxyz"
    format = "extxyz"


class CIFZipRenderer(_StreamRenderer):
    media_type = "application/zip"
    format = "cif"
