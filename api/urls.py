from django.urls import path

from api import views

app_name = "api"

urlpatterns = [
    path("", views.ApiRootView.as_view(), name="root"),
    path("dumps/", views.DumpListView.as_view(), name="dump-list"),
    path("dumps/<str:name>", views.DumpFileView.as_view(), name="dump-file"),
    path("materials/", views.MaterialListView.as_view(), name="material-list"),
    path("materials/<str:public_id>/", views.MaterialDetailView.as_view(), name="material-detail"),
    path("chemsys/<str:chemsys>/hull/", views.HullView.as_view(), name="chemsys-hull"),
    path("campaigns/", views.CampaignListView.as_view(), name="campaign-list"),
    path("campaigns/<str:pk>/", views.CampaignDetailView.as_view(), name="campaign-detail"),
    path("campaigns/<str:pk>/rounds/", views.CampaignRoundsView.as_view(), name="campaign-rounds"),
    path("export/", views.ExportView.as_view(), name="export"),
]
