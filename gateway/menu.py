"""The left menu: which pages each role may use (others are absent, not greyed out).

The gateway's check is the first of two (I6): a page outside the role's menu answers 403
here, and the service behind it still checks the caller's scope against its own data.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common import caller as roles

STAFF_WITH_STUDENT_ACCESS = frozenset({
    roles.COUNSELOR, roles.DEPUTY_SECRETARY, roles.STUDENT_AFFAIRS, roles.ACADEMIC_AFFAIRS,
    roles.IT_CENTRE, roles.HOUSING_CENTRE, roles.AID_OPERATOR, roles.AID_AUDITOR,
    roles.AUTHORITY,
})
EVERYONE = frozenset({*roles.ROLES, roles.SYSTEM})
HOUSING_WRITERS = frozenset({roles.HOUSING_CENTRE})
HOUSING_READERS = frozenset({roles.HOUSING_CENTRE, roles.STUDENT_AFFAIRS})
AID_CENTRE = frozenset({roles.AID_OPERATOR, roles.AID_AUDITOR})
AID_REVIEWERS = frozenset({roles.COUNSELOR, roles.DEPUTY_SECRETARY, roles.AID_OPERATOR, roles.AID_AUDITOR})
# 学籍异动 (issue 5): who applies changes (academic affairs; counselors irregular graduation, 返校, 补报到),
# moves classes (counselor, deputy secretary, student affairs) and follows the students' cases.
STATUS_WORKERS = frozenset({roles.ACADEMIC_AFFAIRS, roles.COUNSELOR, roles.DEPUTY_SECRETARY, roles.STUDENT_AFFAIRS})
STATUS_BATCH = frozenset({roles.ACADEMIC_AFFAIRS, roles.COUNSELOR, roles.DEPUTY_SECRETARY})
# 数据看板 (issue 9): whoever may see at least one of its areas (gateway/dashboard_web.AREAS).
DASHBOARD_READERS = frozenset({roles.COUNSELOR, roles.DEPUTY_SECRETARY, roles.STUDENT_AFFAIRS, roles.ACADEMIC_AFFAIRS,
                               roles.AUTHORITY, roles.HOUSING_CENTRE, roles.AID_OPERATOR, roles.AID_AUDITOR})
# 转学 (issue 8): the school files and decides the outflow school stage; authorities decide theirs; the IT
# centre and student affairs keep the peers and keys; T7 is filed by the student's college or the offices.
TRANSFER_FILERS = frozenset({roles.STUDENT_AFFAIRS, roles.ACADEMIC_AFFAIRS})
TRANSFER_DECIDERS = frozenset({roles.STUDENT_AFFAIRS, roles.ACADEMIC_AFFAIRS, roles.AUTHORITY})
INTERNAL_CHANGES = frozenset({roles.STUDENT_AFFAIRS, roles.ACADEMIC_AFFAIRS, roles.DEPUTY_SECRETARY, roles.COUNSELOR})


@dataclass(frozen=True)
class Entry:
    key: str
    label: str
    endpoint: str
    roles: frozenset[str]
    group: str = ""
    description: str = ""


ENTRIES: tuple[Entry, ...] = (
    Entry("home", "首页", "web.home", EVERYONE),
    Entry("dashboard", "数据看板", "dashboard_web.dashboard", DASHBOARD_READERS, "",
          "在校生、学籍异动、住宿、资助、转学的统计图，点击图形查看对应名单"),
    Entry("students", "学生名单", "web.students", STAFF_WITH_STUDENT_ACCESS, "学籍管理",
          "按学号或姓名查询权限范围内的学生，查看学籍状态、宿舍与账号"),
    Entry("my_record", "我的学籍", "web.my_record", frozenset({roles.STUDENT}), "学籍管理",
          "查看本人的学籍状态、宿舍床位与账号信息"),
    Entry("roster_my_record", "信息变更", "roster_web.my_record", frozenset({roles.STUDENT}), "学籍管理",
          "完善本人信息、申请修改，查看申请进度"),
    Entry("roster_import", "学生导入", "roster_web.import_page", frozenset({roles.IT_CENTRE, roles.STUDENT_AFFAIRS}),
          "学籍管理", "按模板批量导入新生学籍：逐格检查，错误标注后返回，全部正确才导入"),
    Entry("roster_problems", "问题学籍", "roster_web.problems",
          frozenset({roles.STUDENT_AFFAIRS, roles.ACADEMIC_AFFAIRS}), "学籍管理",
          "查重：身份证件号或姓名、性别、出生日期相同的学籍；核实后合并重复学籍"),
    Entry("roster_codes", "数据字典", "roster_web.codes", frozenset({roles.STUDENT_AFFAIRS}), "学籍管理",
          "维护民族、政治面貌等代码表与字段权限；校验学籍审计链"),
    Entry("roster_requests", "变更审核", "roster_web.requests_page",
          frozenset({roles.COUNSELOR, roles.DEPUTY_SECRETARY, roles.STUDENT_AFFAIRS}), "学籍管理",
          "审核学生本人信息变更与关键字段变更申请，查看修改前后对比"),
    Entry("roster_statistics", "学籍统计", "roster_web.statistics",
          frozenset({roles.STUDENT_AFFAIRS, roles.ACADEMIC_AFFAIRS, roles.COUNSELOR, roles.DEPUTY_SECRETARY,
                     roles.AUTHORITY}), "学籍管理",
          "按学院、专业、年级、班级、性别、民族、地区、状态统计在校学生"),
    Entry("roster_numbers", "学号换发", "roster_web.numbers",
          frozenset({roles.ACADEMIC_AFFAIRS, roles.STUDENT_AFFAIRS}), "学籍管理",
          "按教务处对照表把临时学号（考生号）一次性换为正式学号，逐行检查后确认执行；查询学号变更记录"),
    Entry("roster_org", "组织机构", "org_web.tree", frozenset({roles.STUDENT_AFFAIRS, roles.ACADEMIC_AFFAIRS}),
          "学籍管理", "学院、专业、班级及其代码与在校学生数；学生处新增、修改、调整上级和删除空单位"),
    Entry("roster_photos", "照片导入", "roster_web.photos_import",
          frozenset({roles.STUDENT_AFFAIRS, roles.COUNSELOR, roles.DEPUTY_SECRETARY}), "学籍管理",
          "批量上传按身份证件号或“学校代码_班级_姓名”命名的学生照片（zip），逐张检查格式、大小、尺寸与背景"),
    Entry("status_changes", "异动办理", "status_web.index", STATUS_WORKERS, "学籍异动",
          "查看学生的学籍异动记录，办理休学、复学、退学、毕业等异动（附证明材料），撤销异动，办理调班"),
    Entry("status_batch", "批量异动", "status_web.batch", STATUS_BATCH, "学籍异动",
          "按模板批量办理学籍异动：逐格检查，预览每名学生的状态变化，确认后全部生效"),
    Entry("status_approvals", "异动审批", "status_web.applications", frozenset({roles.AUTHORITY}), "学籍异动",
          "审批须经学籍主管部门批准的学籍异动申请"),
    Entry("status_calendar", "学籍日历", "status_web.calendar",
          frozenset({roles.STUDENT_AFFAIRS, roles.ACADEMIC_AFFAIRS}), "学籍异动",
          "迎新截止、缺勤、毕业截止、升级等日期与阈值；预览每项任务涉及的学生并执行"),
    Entry("status_absences", "缺勤登记", "status_web.absences", frozenset({roles.COUNSELOR}), "学籍异动",
          "按日登记所带班级学生的缺勤（请假、能否联系上），导入缺勤表，登记新生报到"),
    Entry("status_dropouts", "疑似辍学", "status_web.dropouts", STATUS_WORKERS, "学籍异动",
          "连续缺勤且联系不上的学生名单"),
    Entry("status_pending", "待毕业名单", "status_web.pending_graduations", STATUS_WORKERS, "学籍异动",
          "待毕业学生的原因、预计毕业日期及是否仍占用宿舍床位"),
    Entry("transfer_file", "转学申请", "transfer_web.file_page", TRANSFER_FILERS, "转学",
          "办理学生转入本校：填写学生信息与转出学校，上传证明材料，提交主管部门审批"),
    Entry("transfer_list", "转学列表", "transfer_web.transfers", TRANSFER_DECIDERS, "转学",
          "按方向、状态查询转入与转出的转学，查看各环节审核、剩余工作日与往来消息，撤销转学"),
    Entry("transfer_approvals", "转学审批", "transfer_web.approvals", TRANSFER_DECIDERS, "转学",
          "按环节审核转学：同意或不同意（须填写理由），逾期默认同意"),
    Entry("transfer_peers", "对端单位与密钥", "transfer_web.peers", frozenset({roles.IT_CENTRE, roles.STUDENT_AFFAIRS}),
          "转学", "维护交换转学消息的学校与签名密钥，核查被拒收的消息，重发未确认的消息"),
    Entry("transfer_calendar", "工作日历", "transfer_web.calendar", frozenset({roles.STUDENT_AFFAIRS, roles.AUTHORITY}),
          "转学", "节假日与调休上班日（可导入），转学审核期限与转学时间段"),
    Entry("transfer_internal", "校内转专业", "transfer_web.internal", INTERNAL_CHANGES, "转学",
          "校内转专业、转学习中心：提交申请，转出与转入单位审批后调入新班级"),
    Entry("housing_buildings", "楼栋房间", "housing_web.buildings", HOUSING_READERS, "宿舍管理",
          "按楼栋、房间、床位浏览宿舍及入住情况"),
    Entry("housing_residents", "住宿查询", "housing_web.residents", STAFF_WITH_STUDENT_ACCESS, "宿舍管理",
          "查询权限范围内学生的住宿情况"),
    Entry("housing_assign", "床位分配", "housing_web.assign", HOUSING_WRITERS, "宿舍管理",
          "为单个学生分配、调整、互换床位，办理入住与退宿"),
    Entry("housing_bulk", "批量调整", "housing_web.bulk", HOUSING_WRITERS, "宿舍管理",
          "批量宿舍异动：先预览冲突，确认后一次性全部生效"),
    Entry("housing_import", "导入与分配", "housing_web.import_page", HOUSING_WRITERS, "宿舍管理",
          "Excel 导入床位与新生分配，按学院、性别、班级自动分配"),
    Entry("housing_checkout", "退宿管理", "housing_web.checkout", HOUSING_READERS, "宿舍管理",
          "毕业生批量退宿，查看离校未退宿名单"),
    Entry("housing_reports", "住宿统计", "housing_web.reports", HOUSING_READERS, "宿舍管理",
          "按楼栋、学院、性别统计入住与空床位，导出报表"),
    Entry("housing_mine", "我的住宿", "housing_web.mine", frozenset({roles.STUDENT}), "宿舍管理",
          "查看本人当前床位与历次住宿记录"),
    Entry("aid_apply", "资助申请", "aid_web.apply", frozenset({roles.STUDENT}), "资助管理",
          "申请国家奖助学金、助学贷款等资助项目，查看审核进度与发放记录"),
    Entry("aid_reviews", "资助审核", "aid_web.reviews", AID_REVIEWERS, "资助管理",
          "按审核环节处理资助申请：通过或退回（须填写原因），谁审核谁负责"),
    Entry("aid_needy", "困难认定", "aid_web.needy", AID_REVIEWERS, "资助管理",
          "家庭经济困难学生认定与困难学生库；身份证件号、收入默认隐藏"),
    Entry("aid_identify_import", "困难认定导入", "aid_web.identifications",
          frozenset({roles.COUNSELOR, roles.DEPUTY_SECRETARY, roles.AID_OPERATOR}), "资助管理",
          "按模板批量导入困难认定结果：逐格检查，错误标注后返回，预览无误后全部导入"),
    Entry("aid_programmes", "资助项目", "aid_web.programmes", AID_CENTRE, "资助管理",
          "资助项目的金额、分档与申请条件（年级、困难认定、成绩排名）；经办人可修改"),
    Entry("aid_quotas", "名额分配", "aid_web.quotas", frozenset({roles.AID_OPERATOR, roles.AID_AUDITOR,
                                                            roles.DEPUTY_SECRETARY}), "资助管理",
          "按资助项目自上而下分配名额与资金：全校 → 学院 → 班级"),
    Entry("aid_registers", "受助学生库", "aid_web.registers", AID_CENTRE, "资助管理",
          "受助学生库、三库一致性检查、按期发放（离校学生停发）"),
    Entry("aid_reports", "资助报表", "aid_web.reports", AID_CENTRE, "资助管理",
          "按学院、级别、项目、金额统计；按全国系统模板校验、导出、报送并与上次比对"),
    Entry("accounts", "账号管理", "accounts.accounts",
          frozenset({roles.STUDENT_AFFAIRS, roles.COUNSELOR, roles.DEPUTY_SECRETARY}), "系统管理",
          "查询账号，重置密码；学生处可新增、停用、启用、授权和导入教职工账号"),
    Entry("accounts_admin", "新增账号", "accounts.create_account", frozenset({roles.STUDENT_AFFAIRS}), "系统管理",
          "新增教职工账号并授予角色与数据范围"),
    Entry("initial_passwords", "学生初始密码", "accounts.initial_passwords",
          frozenset({roles.COUNSELOR, roles.DEPUTY_SECRETARY}), "系统管理",
          "为本人负责的学生生成初始密码并下载分发表"),
    Entry("login_log", "登录日志", "accounts.login_log", frozenset({roles.STUDENT_AFFAIRS}), "系统监控",
          "查看每次登录的账号、IP、结果与时间，解锁被锁定的账号"),
    Entry("online", "在线用户", "accounts.online", frozenset({roles.STUDENT_AFFAIRS}), "系统监控",
          "查看当前在线的会话，强制下线"),
    Entry("my_account", "个人中心", "accounts.my_account", EVERYONE, "个人中心",
          "查看本人账号、授权、在线会话与登录记录，修改密码"),
    Entry("health", "服务状态", "web.health", frozenset({roles.STUDENT_AFFAIRS, roles.IT_CENTRE}),
          "系统监控", "查看统一身份、学籍、宿舍、资助、转学各服务的运行状态"),
    Entry("queues", "消息队列", "ops.queues", frozenset({roles.STUDENT_AFFAIRS, roles.IT_CENTRE}),
          "系统监控", "查看各事件队列的积压与死信，排除原因后重放死信"),
    Entry("api_docs", "接口文档", "openapi.docs_page", frozenset({roles.STUDENT_AFFAIRS, roles.IT_CENTRE}),
          "系统监控", "浏览 /api/v1 的 OpenAPI 接口文档；登录后可在页面上直接试用接口"),
)

BY_KEY = {entry.key: entry for entry in ENTRIES}


def allowed(role: str, key: str) -> bool:
    return role in BY_KEY[key].roles


def entries_for(role: str) -> list[Entry]:
    return [entry for entry in ENTRIES if role in entry.roles]


def groups_for(role: str) -> list[tuple[str, list[Entry]]]:
    """Menu entries of `role`, grouped in menu order (ungrouped entries first)."""
    grouped: dict[str, list[Entry]] = {}
    for entry in entries_for(role):
        grouped.setdefault(entry.group, []).append(entry)
    return list(grouped.items())
