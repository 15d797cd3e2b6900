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


class _AuthenticatedOnly(UserRateThrottle):
    """DRF's user throttle also counts anonymous requests by IP; here the anonymous rates alone apply to those."""

    def get_cache_key(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return None
        return super().get_cache_key(request, view)


class UserReadThrottle(_SettingsRate, _AuthenticatedOnly):
    scope = "user"


class AnonExportThrottle(_SettingsRate, AnonRateThrottle):
    scope = "anon_export"


class UserExportThrottle(_SettingsRate, _AuthenticatedOnly):
    scope = "user_export"


READ_THROTTLES = [AnonReadThrottle, UserReadThrottle]
EXPORT_THROTTLES = [AnonExportThrottle, UserExportThrottle]
