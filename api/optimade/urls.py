from django.urls import path, re_path

from api.optimade import views

app_name = "optimade"

_VERSION = r"(?P<version>v1(?:\.2(?:\.0)?)?)"
_versioned = [
    ("info", views.info, "info"),
    ("info/(?P<entry>[^/]+)", views.entry_info, "entry-info"),
    ("structures", views.structures, "structures"),
    ("structures/(?P<entry_id>[^/]+)", views.structure, "structure"),
    ("references", views.references, "references"),
    ("references/(?P<entry_id>[^/]+)", views.reference, "reference"),
    ("links", views.links, "links"),
]


def _drop_version(view):
    def wrapper(request, version, **kwargs):
        return view(request, **kwargs)

    return wrapper


urlpatterns = [
    path("versions", views.versions, name="versions"),
    *[re_path(rf"^{_VERSION}/{pattern}/?$", _drop_version(view), name=name) for pattern, view, name in _versioned],
    re_path(rf"^{_VERSION}/(?P<rest>.*)$", lambda request, version, rest: views.not_found(request, rest)),
    re_path(r"^(?P<version>v\d[^/]*)(?:/(?P<rest>.*))?$", views.unsupported_version, name="unsupported-version"),
]
