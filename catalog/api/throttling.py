"""Throttles: anonymous reads are welcome but rate-limited; the bulk export is limited harder.

Rates come from ``settings.GNOMON_API_THROTTLE_RATES`` (environment variables, see gnomon/settings.py), read per
request so that they can be changed without a restart of the module.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class _SettingsRate:
    scope = ""

    def get_rate(self):
        return settings.GNOMON_API_THROTTLE_RATES.get(self.scope)


class AnonReadThrottle(_SettingsRate, AnonRateThrottle):
    scope = "anon"


class UserReadThrottle(_SettingsRate, UserRateThrottle):
    scope = "user"


class AnonExportThrottle(_SettingsRate, AnonRateThrottle):
    scope = "anon_export"


class UserExportThrottle(_SettingsRate, UserRateThrottle):
    scope = "user_export"


READ_THROTTLES = [AnonReadThrottle, UserReadThrottle]
EXPORT_THROTTLES = [AnonExportThrottle, UserExportThrottle]
