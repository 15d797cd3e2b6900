from django.urls import path

from frontend import views

app_name = "frontend"

urlpatterns = [
    path("", views.home, name="home"),
    path("materials/", views.material_list, name="material-list"),
    path("materials/<str:public_id>/", views.material_detail, name="material-detail"),
    path("materials/<str:public_id>/download/<str:fmt>/", views.material_download, name="material-download"),
    path("phase-diagrams/<str:chemsys>/", views.phase_diagram_page, name="phase-diagram"),
    path("campaigns/", views.campaign_list, name="campaign-list"),
    path("campaigns/<int:pk>/", views.campaign_detail, name="campaign-detail"),
    path("campaigns/<int:pk>/progress/", views.campaign_progress, name="campaign-progress"),
    path("campaigns/<int:pk>/launch/", views.campaign_launch, name="campaign-launch"),
    path("campaigns/<int:pk>/cancel/", views.campaign_cancel, name="campaign-cancel"),
]
