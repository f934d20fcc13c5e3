"""Ids shared by the buttons flows create and the listeners that receive their clicks."""

APPROVE = "visit_approve"
DECLINE = "visit_decline"
START_VISIT = "visit_start"
START_ROUND = "visit_start_round"
CANCEL_VISIT = "visit_cancel"
NEXT_VISIT = "visit_next"

# Modal callback ids.
VISIT_FORM = "visit_form_details"
RISK_FORM = "visit_form_risk"
DECLINE_FORM = "visit_decline_reason"

# The safety net.
CHECKIN_OK = "checkin_ok"
CHECKIN_HELP = "checkin_help"
CHECKIN_EXTEND = "checkin_extend"
VISITOR_BACK = "visitor_back"
ALERT_ACK = "alert_ack"
ALERT_SAFE = "alert_safe"
ALERT_NO_ANSWER = "alert_no_answer"
EXTEND_FORM = "visit_extend"
SAFE_FORM = "alert_safe_note"
DURESS_FORM = "duress_word"

# The confidential conversation (issue 13 item 4).
CONFIDENTIAL = "confidential_open"
CONFIDENTIAL_FORM = "confidential_pick"

# Ladder drills (issue 15): the one button on a drill message; its value is the drill message's id.
DRILL_ACK = "drill_ack"

# After the visit, the DSL's side (issue 14 items 2, 4, 5, 6; helper "dslside").
CONCERN_FORM = "concern_form"
REGISTER_ADD = "register_add"
REGISTER_ADD_FORM = "register_add_form"
REGISTER_CLEAR = "register_clear"
REGISTER_CLEAR_FORM = "register_clear_form"
REFERRAL = "record_referral"
REFERRAL_FORM = "record_referral_form"
SHARE = "record_share"
SHARE_FORM = "record_share_form"

# After the visit: outcomes, records on CPOMS, the debrief (issue 14, helper "outcome").
OUTCOME_NO_CONCERNS = "outcome_no_concerns"
OUTCOME_NOBODY_HOME = "outcome_nobody_home"
OUTCOME_CONCERN = "outcome_concern"
OUTCOME_INCIDENT = "outcome_incident"
OUTCOME_LEFT_UNSAFE = "outcome_left_unsafe"
OUTCOME_ALLEGATION = "outcome_allegation"
RECORDED = "record_recorded"
DEBRIEF_YES = "debrief_yes"
DEBRIEF_NO = "debrief_no"
NOBODY_HOME_FORM = "outcome_form_nobody_home"
OUTCOME_CONCERN_FORM = "outcome_form_concern"
INCIDENT_FORM = "outcome_form_incident"
LEFT_UNSAFE_FORM = "outcome_form_left_unsafe"
ALLEGATION_FORM = "outcome_form_allegation"
