from django.urls import path

from refloop.outreach import views, views_compliance, views_concerns

app_name = "outreach"
urlpatterns = [
    path("", views.home, name="home"),
    path("week/", views.week, name="week"),
    path("due/", views.due, name="due"),
    path("calendar.ics", views.calendar_feed, name="calendar"),
    path("activities/", views.activity_list, name="activities"),
    path("activities/new/", views.activity_new, name="activity_new"),
    path("activities/preview/", views.activity_preview, name="activity_preview"),
    path("activities/practices/", views.practice_choices, name="practice_choices"),
    path("activities/attendees/", views.attendees, name="attendees"),
    path("activities/<int:activity_id>/", views.activity_detail, name="activity"),
    path("activities/<int:activity_id>/edit/", views.activity_edit, name="activity_edit"),
    path("activities/<int:activity_id>/cancel/", views.activity_cancel, name="activity_cancel"),
    path("activities/<int:activity_id>/receipt/", views.activity_receipt, name="activity_receipt"),
    path("tasks/<int:task_id>/done/", views.task_done, name="task_done"),
    path("territories/", views.territories, name="territories"),
    path("practices/<int:practice_id>/reassign/", views.practice_reassign, name="practice_reassign"),
    path("settings/", views.outreach_settings, name="settings"),
    path("settings/edit/", views.outreach_settings_edit, name="settings_edit"),
    path("concerns/", views_concerns.concern_list, name="concerns"),
    path("concerns/new/", views_concerns.concern_new, name="concern_new"),
    path("concerns/<int:concern_id>/", views_concerns.concern_detail, name="concern"),
    path("concerns/<int:concern_id>/update/", views_concerns.concern_update, name="concern_update"),
    path("compliance/", views_compliance.compliance_home, name="compliance"),
    path("compliance/limits/", views_compliance.limits, name="limits"),
    path("compliance/limits/<int:year>/", views_compliance.limit_edit, name="limit_edit"),
    path(
        "compliance/<int:year>/physicians/<int:physician_id>/",
        views_compliance.compliance_physician,
        name="compliance_physician",
    ),
    path(
        "compliance/<int:year>/physicians/<int:physician_id>/repayment/",
        views_compliance.repayment_new,
        name="repayment_new",
    ),
    path("compliance/<int:year>/report.pdf", views_compliance.report_pdf, name="report_pdf"),
    path("compliance/<int:year>/report.csv", views_compliance.report_csv, name="report_csv"),
]
