"""The practice's starting letters and which steps send them. Practices edit both afterwards; this only fills
an empty installation (an existing template or rule is left as it is)."""

from django.db import migrations

SIGN_OFF = '<p>Sincerely,</p>\n<p>The referral team<br>{{ practice.name }} · {{ practice.phone }}</p>'
PATIENT_LINE = '{{ patient.name }} (born {{ patient.birth_date|date:"m/d/Y" }})'

TEMPLATES = {
    "receipt": (
        "Referral received",
        '<p>Dear {{ recipient.salutation }},</p>\n'
        f'<p>Thank you for referring <strong>{PATIENT_LINE}</strong> to {{{{ practice.name }}}}. We received the '
        'referral on {{ referral.received_on|date:"F j, Y" }}; our reference is {{ referral.number }}.</p>\n'
        '<p>Reason for referral: {{ referral.reason }}</p>\n'
        '<p>We are contacting your patient to schedule a visit{% if referral.urgency != "Routine" %} with the '
        'priority you asked for ({{ referral.urgency|lower }}){% endif %}, and we will tell you the date.</p>\n'
        + SIGN_OFF,
    ),
    "scheduled": (
        "Appointment scheduled",
        '<p>Dear {{ recipient.salutation }},</p>\n'
        f'<p>Your patient <strong>{PATIENT_LINE}</strong> will see {{{{ referral.clinician|default:"one of our '
        'specialists" }} on <strong>{{ referral.appointment|date:"l, F j, Y, g:i A" }}</strong>'
        '{% if referral.location %} at {{ referral.location }}{% if referral.location_address %}, '
        '{{ referral.location_address }}{% endif %}{% endif %}.</p>\n'
        '<p>We will send you our consult report after the visit.</p>\n' + SIGN_OFF,
    ),
    "missed": (
        "Missed appointment",
        '<p>Dear {{ recipient.salutation }},</p>\n'
        f'<p>Your patient {PATIENT_LINE} '
        '{% if referral.state == "No-show" %}did not come to the appointment{% else %}cancelled the appointment'
        '{% endif %}{% if referral.appointment %} of {{ referral.appointment|date:"F j, Y" }}{% endif %}'
        '{% if event.note %} ({{ event.note }}){% endif %}.</p>\n'
        '<p>The referral stays open: we are reaching out to reschedule and will keep you informed. If you hear '
        'from your patient first, please ask them to call us at {{ practice.phone }}.</p>\n' + SIGN_OFF,
    ),
    "declined": (
        "Referral declined",
        '<p>Dear {{ recipient.salutation }},</p>\n'
        f'<p>Thank you for thinking of us for {PATIENT_LINE}. We are sorry that we cannot take this referral.</p>\n'
        '<p>Reason: {{ referral.decline_reason|default:event.note|default:"not given" }}</p>\n'
        '<h2>Suggested alternatives</h2>\n'
        '{% if letter.text %}<p class="prewrap">{{ letter.text }}</p>{% else %}<p>Please call us at '
        '{{ practice.phone }}: we will gladly suggest another specialist who can help your patient.</p>{% endif %}\n'
        + SIGN_OFF,
    ),
    "consult_report": (
        "Consultation report",
        '<p>Dear {{ recipient.salutation }},</p>\n'
        f'<p>Thank you for referring {PATIENT_LINE}, seen {{% if referral.seen_on %}}on '
        '{{ referral.seen_on|date:"F j, Y" }} {% endif %}by {{ referral.clinician|default:"our team" }} for: '
        '{{ referral.reason }}</p>\n'
        '{% if not report.is_final %}<p><em>This is a progress report; our final report will follow.</em></p>'
        '{% endif %}\n'
        '{% if report.findings %}<h2>Findings</h2><p class="prewrap">{{ report.findings }}</p>{% endif %}\n'
        '{% if report.assessment %}<h2>Assessment</h2><p class="prewrap">{{ report.assessment }}</p>{% endif %}\n'
        '{% if report.plan %}<h2>Plan</h2><p class="prewrap">{{ report.plan }}</p>{% endif %}\n'
        '{% if report.recommendations %}<h2>Recommendations</h2><p class="prewrap">{{ report.recommendations }}'
        '</p>{% endif %}\n'
        '{% if report.has_ehr_pdf %}<p>The full consultation note from our records is attached.</p>{% endif %}\n'
        '<p>Please call {{ practice.phone }} with any questions about your patient.</p>',
    ),
    "sent_back": (
        "Patient returned to your care",
        '<p>Dear {{ recipient.salutation }},</p>\n'
        f'{{% if referral.was_seen %}}<p>{PATIENT_LINE} has finished care with us and returns to your care.</p>\n'
        '{% if referral.follow_up %}<h2>Follow-up</h2><p class="prewrap">{{ referral.follow_up }}</p>{% endif %}'
        f'{{% else %}}<p>We could not see {PATIENT_LINE} and return the referral to you'
        '{% if event.note %}: {{ event.note }}{% endif %}.</p>{% endif %}\n'
        '<p>Thank you for the referral.</p>\n' + SIGN_OFF,
    ),
    "after_visit": (
        "After your visit",
        '<p>Dear {{ recipient.salutation }},</p>\n'
        '<p>Thank you for visiting {{ referral.clinician|default:"us" }}{% if referral.seen_on %} on '
        '{{ referral.seen_on|date:"F j, Y" }}{% endif %}.</p>\n'
        '{% if letter.text %}<h2>Your instructions</h2><p class="prewrap">{{ letter.text }}</p>{% endif %}\n'
        '<p>If you have questions or your symptoms get worse, call us at {{ practice.phone }}.</p>\n' + SIGN_OFF,
    ),
    "thank_you_first": (
        "Thank you for your referral",
        '<p>Dear {{ recipient.salutation }},</p>\n'
        '<p>Thank you for your first referral to {{ practice.name }} ({{ patient.initials }}, received '
        '{{ referral.received_on|date:"F j, Y" }}). We will tell you at every step where your patient stands: '
        'when we schedule the visit, after it with our report, and when your patient returns to your care.</p>\n'
        '<p>Our referral line is {{ practice.phone }}{% if practice.fax %}, fax {{ practice.fax }}{% endif %}.</p>\n'
        + SIGN_OFF,
    ),
    "thank_you_summary": (
        "Thank you for your referrals",
        '<p>Dear {{ recipient.salutation }},</p>\n'
        '<p>Thank you for the {{ summary.count }} patient{{ summary.count|pluralize }} you sent us '
        '{{ summary.period }}. Here is where each of them stands:</p>\n'
        '<table><thead><tr><th>Patient</th><th>Referred</th><th>Status</th></tr></thead><tbody>\n'
        '{% for patient in summary.patients %}<tr><td>{{ patient.initials }}</td>'
        '<td>{{ patient.received_on|date:"M j, Y" }}</td><td>{{ patient.status }}</td></tr>{% endfor %}\n'
        '</tbody></table>\n<p>We value working with you.</p>\n' + SIGN_OFF,
    ),
    "free": (
        "Letter",
        '<p>Dear {{ recipient.salutation }},</p>\n'
        f'{{% if patient.name %}}<p><strong>Re: {PATIENT_LINE}</strong></p>{{% endif %}}\n'
        '<p class="prewrap">{{ letter.text }}</p>\n' + SIGN_OFF,
    ),
}

# (step, kind, recipient, switched on)
RULES = [
    ("receive", "receipt", "referring_provider", True),
    ("receive", "thank_you_first", "referring_provider", False),
    ("decline", "declined", "referring_provider", True),
    ("schedule", "scheduled", "referring_provider", True),
    ("reschedule", "scheduled", "referring_provider", True),
    ("mark_no_show", "missed", "referring_provider", True),
    ("cancel", "missed", "referring_provider", True),
    ("mark_seen", "after_visit", "patient", False),
    ("send_back", "sent_back", "referring_provider", True),
    ("return_to_referrer", "sent_back", "referring_provider", True),
]


def create_defaults(apps, schema_editor):
    LetterTemplate = apps.get_model("letters", "LetterTemplate")
    LetterRule = apps.get_model("letters", "LetterRule")
    for kind, (title, body) in TEMPLATES.items():
        LetterTemplate.objects.get_or_create(kind=kind, defaults={"title": title, "body": body})
    for step, kind, recipient, enabled in RULES:
        LetterRule.objects.get_or_create(step=step, kind=kind, recipient=recipient, defaults={"enabled": enabled})


class Migration(migrations.Migration):
    dependencies = [("letters", "0001_letters_deliveries_reports_links")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
