from django.urls import path

from refloop.letters import views, views_reports

app_name = "letters"
urlpatterns = [
    path("", views.home, name="home"),
    path("deliveries/<int:delivery_id>/", views.delivery_detail, name="delivery"),
    path("deliveries/<int:delivery_id>/retry/", views.delivery_retry, name="delivery_retry"),
    path("deliveries/<int:delivery_id>/redirect/", views.delivery_redirect, name="delivery_redirect"),
    path("deliveries/<int:delivery_id>/delivered/", views.delivery_confirm, name="delivery_confirm"),
    path("print/batch.pdf", views.print_batch, name="print_batch"),
    path("print/mailed/", views.print_mailed, name="print_mailed"),
    path("letters/<int:letter_id>/", views.letter_detail, name="letter"),
    path("letters/<int:letter_id>/pdf/", views.letter_pdf, name="letter_pdf"),
    path("referrals/<int:referral_id>/new/", views.letter_new, name="letter_new"),
    path("referrals/<int:referral_id>/report/", views_reports.report_edit, name="report_edit"),
    path("reports/", views_reports.reports, name="reports"),
    path("reports/<int:report_id>/", views_reports.report_detail, name="report"),
    path("reports/<int:report_id>/sign/", views_reports.report_sign, name="report_sign"),
    path("reports/<int:report_id>/send/", views_reports.report_send, name="report_send"),
    path("reports/<int:report_id>/ehr.pdf", views_reports.report_ehr_pdf, name="report_ehr_pdf"),
    path("reports/<int:report_id>/consult-note.xml", views_reports.report_ccda, name="report_ccda"),
    path("templates/", views.template_list, name="templates"),
    path("templates/<int:template_id>/", views.template_edit, name="template"),
    path("templates/<int:template_id>/preview/", views.template_preview, name="template_preview"),
    path("automation/", views.automation, name="automation"),
    path("automation/add/", views.automation_add, name="automation_add"),
    path("automation/summaries/", views.summaries_create, name="summaries"),
    path("links/", views.links, name="links"),
    path("links/new/<int:practice_id>/", views.link_create, name="link_create"),
    path("links/<int:link_id>/revoke/", views.link_revoke, name="link_revoke"),
]
