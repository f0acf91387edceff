from django.urls import path

from refloop.referrals import views
from refloop.referrals.import_urls import urlpatterns as import_urlpatterns

app_name = "referrals"
urlpatterns = [
    path("", views.home, name="home"),
    path("assign/", views.bulk_assign, name="bulk_assign"),
    path("new/", views.intake, name="new"),
    path("new/providers/", views.intake_providers, name="intake_providers"),
    path("new/patients/", views.intake_patients, name="intake_patients"),
    path("<int:referral_id>/", views.detail, name="detail"),
    path("<int:referral_id>/move/<slug:name>/", views.move, name="move"),
    path("<int:referral_id>/contact/", views.contact_log, name="contact"),
    path("<int:referral_id>/assign/", views.assign, name="assign"),
    path("<int:referral_id>/attachments/", views.attachment_upload, name="attachment_upload"),
    path("<int:referral_id>/attachments/<int:attachment_id>/", views.attachment_download, name="attachment"),
    *import_urlpatterns,
]
