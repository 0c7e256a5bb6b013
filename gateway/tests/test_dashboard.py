"""The home page's item table and the dashboard's areas per role (issue 9), checked against the
menu: an item or a chart never leads to a page the role's menu does not have.
(Counts, scope, links and outages against real services: tests/integration/test_dashboard.py.)"""

from __future__ import annotations

from gateway import dashboard_web, home, menu
from services.common import caller as roles

EXPECTED_ITEMS = {
    roles.COUNSELOR: ["change_requests", "review_queue", "suspected_dropouts"],
    roles.DEPUTY_SECRETARY: ["change_requests", "review_queue", "suspected_dropouts"],
    roles.STUDENT_AFFAIRS: ["change_requests", "problem_records", "clearance_problems", "status_applications",
                            "pending_graduations", "transfer_approvals", "transfer_due_soon"],
    roles.ACADEMIC_AFFAIRS: ["problem_records", "clearance_problems", "status_applications", "pending_graduations",
                             "transfer_approvals", "transfer_due_soon"],
    roles.AUTHORITY: ["status_applications", "transfer_approvals", "transfer_due_soon"],
    roles.HOUSING_CENTRE: ["holders_who_left", "restore_problems"],
    roles.AID_OPERATOR: ["review_queue"],
    roles.AID_AUDITOR: ["review_queue"],
    roles.IT_CENTRE: [],
    roles.STUDENT: ["own_change_requests", "own_applications"],
}

EXPECTED_AREAS = {
    roles.COUNSELOR: ["enrolment", "status_changes"],
    roles.DEPUTY_SECRETARY: ["enrolment", "status_changes"],
    roles.STUDENT_AFFAIRS: ["enrolment", "status_changes", "occupancy", "transfers"],
    roles.ACADEMIC_AFFAIRS: ["enrolment", "status_changes", "transfers"],
    roles.AUTHORITY: ["enrolment", "status_changes", "transfers"],
    roles.HOUSING_CENTRE: ["occupancy"],
    roles.AID_OPERATOR: ["aid"],
    roles.AID_AUDITOR: ["aid"],
    roles.IT_CENTRE: [],
    roles.STUDENT: [],
}

# The list page each area's bars lead to (dashboard_web builds the links).
AREA_PAGES = {"enrolment": ["students"], "status_changes": ["dashboard"], "occupancy": ["housing_residents"],
              "aid": ["aid_registers", "aid_needy"], "transfers": ["transfer_list"]}


def test_each_role_gets_its_action_items() -> None:
    assert set(EXPECTED_ITEMS) == set(roles.ROLES)
    for role, keys in EXPECTED_ITEMS.items():
        assert [item.key for item in home.items_for(role)] == keys, role


def test_items_lead_only_to_pages_of_the_role_menu() -> None:
    linked = {(role, item.key) for item in home.ITEMS for role in item.roles
              if item.menu_key is not None and menu.allowed(role, item.menu_key)}
    # Status applications are decided by the authority: the offices see that count without a link.
    unlinked = {(role, item.key) for item in home.ITEMS for role in item.roles} - linked
    assert unlinked == {(roles.STUDENT_AFFAIRS, "status_applications"),
                        (roles.ACADEMIC_AFFAIRS, "status_applications")}
    assert {item.service for item in home.ITEMS} == {"roster", "aid", "transfer", "housing"}


def test_dashboard_areas_per_role_and_their_pages_are_in_the_menu() -> None:
    for role, areas in EXPECTED_AREAS.items():
        assert dashboard_web.areas_for(role) == areas, role
        assert menu.allowed(role, "dashboard") is bool(areas), role
        for area in areas:
            for key in AREA_PAGES[area]:
                assert menu.allowed(role, key), (role, area, key)
