"""Ids shared by the buttons flows create and the listeners that receive their clicks."""

APPROVE = "visit_approve"
DECLINE = "visit_decline"
START_VISIT = "visit_start"

# Modal callback ids.
VISIT_FORM = "visit_form_details"
RISK_FORM = "visit_form_risk"
DECLINE_FORM = "visit_decline_reason"
