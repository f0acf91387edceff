from django.urls import path

from refloop.insights import views, views_alerts, views_reports, views_scorecards

app_name = "insights"
urlpatterns = [
    path("", views.home, name="home"),
    path("referrals/", views.drilldown, name="drilldown"),
    path("sources/", views.sources, name="sources"),
    path("scorecards/", views_scorecards.scorecards, name="scorecards"),
    path("scorecards/liaisons/<int:user_id>/", views_scorecards.scorecard_liaison, name="scorecard_liaison"),
    path("scorecards/clinicians/<int:clinician_id>/", views_scorecards.scorecard_clinician, name="scorecard_clinician"),
    path("effectiveness/", views_scorecards.effectiveness_page, name="effectiveness"),
    path("reports/", views_reports.monthly_reports, name="monthly_reports"),
    path("reports/<int:year>/<int:month>/", views_reports.monthly_report_pdf, name="monthly_report_pdf"),
    path("reports/email/", views_reports.monthly_report_email, name="monthly_report_email"),
    path("alerts/<int:alert_id>/follow-up/", views_alerts.alert_follow_up, name="alert_follow_up"),
]
