"""Renderers for structure files and export streams, so that ``?format=`` and ``Accept`` both choose them."""

from __future__ import annotations

import json

from pymatgen.core import Structure
from rest_framework.renderers import BaseRenderer

from catalog.formats import structure_to_format


class _StructureFileRenderer(BaseRenderer):
    """Renders the ``structure`` of a serialized material with ``catalog.formats`` (the UI's downloads, same code).

    The view sends errors as JSON (see ``JSONErrorsMixin``), so ``data`` here is always a material.
    """

    charset = "utf-8"
    catalog_format = ""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return structure_to_format(Structure.from_dict(data["structure"]), self.catalog_format)[0]


class CIFRenderer(_StructureFileRenderer):
    media_type = "chemical/x-cif"
    format = catalog_format = "cif"


class POSCARRenderer(_StructureFileRenderer):
    media_type = "text/plain"
    format = catalog_format = "poscar"


class ExtXYZRenderer(_StructureFileRenderer):
    media_type = "chemical/x-extxyz"
    format = "extxyz"
    catalog_format = "xyz"


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
