"""A plausible year of proposals for a county, as history-import records.

Deterministic for a seed. Each record is a proposal and the actions taken on it
with their dates; the import replays them through the state machine, so the
stored proposals are exactly what the rules produce. Actions dated after
``until`` are left out, which leaves the recent proposals in every open state.
"""
import random
from datetime import date, timedelta

# (id, name, kind, category, topics)
UNITS = [
    ("jyj", "县教育局", "government", "livelihood",
     ["教育", "学校", "教师队伍", "课后服务", "学前教育", "义务教育", "校园安全", "职业教育"]),
    ("wjj", "县卫生健康局", "government", "livelihood",
     ["医疗", "卫生院", "医共体", "乡村医生", "公共卫生", "疾病预防", "健康"]),
    ("rsj", "县人力资源和社会保障局", "government", "livelihood",
     ["就业", "社会保险", "技能培训", "农民工工资", "创业", "人才引进"]),
    ("zjj", "县住房和城乡建设局", "government", "livelihood",
     ["老旧小区改造", "物业管理", "住房保障", "燃气", "集中供暖", "城市建设"]),
    ("jtj", "县交通运输局", "government", "economy",
     ["农村公路", "公交", "客运", "物流", "道路养护", "交通"]),
    ("nyj", "县农业农村局", "government", "economy",
     ["农业", "乡村振兴", "高标准农田", "养殖", "农产品", "合作社", "种业"]),
    ("wlj", "县文化和旅游局", "government", "culture",
     ["文化", "旅游", "景区", "非物质文化遗产", "文物保护", "图书馆", "文旅融合"]),
    ("scj", "县市场监督管理局", "government", "livelihood",
     ["食品安全", "市场监管", "药品安全", "特种设备", "消费维权", "价格"]),
    ("sthj", "市生态环境局长子分局", "government", "ecology",
     ["大气污染", "水污染", "生态环境", "秸秆焚烧", "噪声", "环境监测"]),
    ("mzj", "县民政局", "government", "livelihood",
     ["养老服务", "社区治理", "社会救助", "低保", "残疾人", "殡葬改革"]),
    ("slj", "县水利局", "government", "economy",
     ["水利", "农田灌溉", "农村饮水安全", "河道治理", "水库", "节水"]),
    ("zrzy", "县自然资源局", "government", "ecology",
     ["国土空间规划", "耕地保护", "土地", "矿产资源", "不动产登记"]),
    ("gxj", "县工业和信息化局", "government", "economy",
     ["工业", "中小企业", "产业园区", "数字经济", "企业技改", "新材料"]),
    ("fgj", "县发展和改革局", "government", "economy",
     ["重点项目", "营商环境", "发展规划", "能源", "投资"]),
    ("swj", "县商务局", "government", "economy",
     ["电子商务", "招商引资", "商贸流通", "县域消费", "外贸"]),
    ("czj", "县财政局", "government", "economy",
     ["财政资金", "预算", "专项债", "惠民补贴", "政府采购"]),
    ("gaj", "县公安局", "government", "politics",
     ["社会治安", "电信诈骗", "交通安全", "户籍", "校园周边治安"]),
    ("sfj", "县司法局", "government", "politics",
     ["法治建设", "法律援助", "普法", "人民调解", "社区矫正"]),
    ("yjj", "县应急管理局", "government", "livelihood",
     ["安全生产", "防汛", "应急救援", "消防安全", "减灾"]),
    ("tyjr", "县退役军人事务局", "government", "livelihood",
     ["退役军人", "优抚", "双拥", "军人安置"]),
    ("ybj", "县医疗保障局", "government", "livelihood",
     ["医保", "医疗费用报销", "药品集采", "异地就医", "医保基金"]),
    ("cgj", "县城市管理局", "government", "livelihood",
     ["市容", "停车", "环境卫生", "垃圾分类", "占道经营", "城市照明"]),
    ("lyj", "县林业局", "government", "ecology",
     ["林业", "植树造林", "森林防火", "国土绿化", "湿地保护"]),
    ("kjj", "县科学技术局", "government", "economy",
     ["科技创新", "科技特派员", "研发", "高新技术企业"]),
    ("tyzx", "县体育事业发展中心", "public_institution", "culture",
     ["全民健身", "体育场馆", "体育赛事", "健身设施"]),
    ("fl", "县妇女联合会", "people_org", "livelihood",
     ["妇女权益", "留守儿童", "家庭教育", "妇女就业"]),
    ("tw", "共青团长子县委员会", "people_org", "livelihood",
     ["青少年", "青年创业", "志愿服务", "青少年心理健康"]),
    ("gdgs", "国网长子县供电公司", "enterprise", "economy",
     ["电网", "农村用电", "供电可靠", "充电桩", "电力"]),
    ("xzsp", "县行政审批服务管理局", "government", "politics",
     ["行政审批", "政务服务", "一网通办", "便民服务", "证照办理"]),
    ("zzb", "中共长子县委组织部", "party", "party",
     ["基层党建", "干部队伍", "人才工作", "党员教育"]),
]

VERBS = ["加强", "推进", "完善", "提升", "加快", "规范", "优化", "破解", "做好", "强化"]
NOUNS = ["工作", "建设", "服务", "管理", "保障", "发展", "体系", "水平"]
PROBLEMS = ["覆盖面不足", "资金投入不足", "基础设施薄弱", "监管存在盲区", "群众反映强烈",
            "专业人才缺乏", "机制不健全", "城乡差距较大"]
GROUNDS = ["属于党委政府工作报告已安排的事项", "内容空泛、无具体建议",
           "涉及个人或少数人利益诉求", "不属于本级政协提案受理范围"]
COLLECTIVES = [("party", "民盟长子县总支"), ("party", "民建长子县支部"),
               ("federation", "长子县工商业联合会"), ("sector", "教育界"),
               ("sector", "医药卫生界"), ("committee", "经济委"), ("committee", "文史委"),
               ("group", "第三委员小组")]
LEADERS = ["县委书记", "县长", "县政协主席", "常务副县长", "分管副县长"]


def units(level="county"):
    """Unit directory records for ``POST /api/v1/units`` (a city's own 市-level
    units for ``level="city"``)."""
    rename = (lambda n: n.replace("县", "市", 1)) if level == "city" else (lambda n: n)
    return [{"id": uid, "name": rename(name), "kind": kind, "topics": topics,
             "contacts": [{"name": f"{rename(name)}办公室", "phone": "0355-8" + str(100000 + i)}]}
            for i, (uid, name, kind, _, topics) in enumerate(UNITS)]


GENERIC_TITLES = ["关于解决群众急难愁盼问题的建议", "关于推动县域经济高质量发展的建议",
                  "关于加强基层治理的建议", "关于补齐民生短板的建议", "关于助力乡村全面振兴的建议"]


def _text(rng, unit, extra_unit=None):
    uid, name, kind, category, topics = unit
    topic = rng.choice(topics)
    # some titles say nothing of the subject: only the body tells the unit
    title = rng.choice(GENERIC_TITLES) if rng.random() < 0.15 else \
        f"关于{rng.choice(VERBS)}{topic}{rng.choice(NOUNS)}的建议"
    second = rng.choice(topics)
    situation = (f"近年来我县{topic}取得一定成效，但仍存在{rng.choice(PROBLEMS)}、"
                 f"{second}{rng.choice(PROBLEMS)}等问题。")
    if extra_unit:
        situation += f"同时{rng.choice(extra_unit[4])}方面需要协同推进。"
    return {"title": title[:50], "situation": situation,
            "analysis": f"主要原因是{topic}{rng.choice(PROBLEMS)}，相关部门统筹不够。",
            "suggestions": f"一是{rng.choice(VERBS)}{topic}；二是{rng.choice(VERBS)}"
                           f"{second}；三是建立{topic}长效机制。",
            "category": category}


class _Plan:
    def __init__(self, until):
        self.until = until
        self.actions = []

    def add(self, day, action, roles, data=None):
        if day <= self.until:
            self.actions.append({"action": action, "on": day.isoformat(), "as": roles,
                                 "data": data or {}})
            return True
        return False


def _after(day, rng, lo, hi):
    return day + timedelta(days=rng.randint(lo, hi))


def year_of_proposals(member_ids, *, year, until, session_days=None, n=250, seed=7):
    """``n`` import records for ``year``; ``session_days`` is the plenary's
    (first, last) date, inside the platform's submission window (without it,
    every proposal is an interim one)."""
    rng = random.Random(seed)
    members = sorted(member_ids)
    records = []
    registered = []  # (ref, decide day) of registered ones: merge targets
    for i in range(n):
        unit = UNITS[rng.choices(range(len(UNITS)), weights=[
            6 if u[3] == "livelihood" else 3 for u in UNITS])[0]]
        co_unit = rng.choice(UNITS) if rng.random() < 0.3 else None
        if co_unit is unit:
            co_unit = None
        content = _text(rng, unit, co_unit)
        if co_unit and rng.random() < 0.25:  # staff judged the other unit the lead
            unit, co_unit = co_unit, unit
        session_kind = session_days is not None and rng.random() < 0.55
        if session_kind:
            first, last = session_days
            d0 = first + timedelta(days=rng.randint(0, (last - first).days))
        else:
            d0 = date(year, 1, 15) + timedelta(days=rng.randint(0, 300))
        if d0 > until:
            d0 = until - timedelta(days=rng.randint(0, 30))
        collective = rng.random() < 0.11
        proposal = dict(content, kind="collective" if collective else "member",
                        type="session" if session_kind else "interim")
        if collective:
            kind, name = rng.choice(COLLECTIVES)
            proposal["collective"] = {"kind": kind, "name": name}
        else:
            lead = rng.choice(members)
            proposal["lead_member"] = lead
            proposal["cosigners"] = [m for m in rng.sample(members, rng.choice([0, 0, 1, 2]))
                                     if m != lead]
        plan = _Plan(until)
        record = {"ref": f"demo-{year}-{i + 1:04d}", "proposal": proposal,
                  "created_on": d0.isoformat(), "actions": plan.actions}
        records.append(record)
        _lifecycle(rng, plan, record, d0, unit, co_unit, registered)
    return records


def _lifecycle(rng, plan, record, d0, unit, co_unit, registered):
    p = record["proposal"]
    proposers = ([p["lead_member"]] if p["kind"] == "member" else [])
    lead_roles = ["admin"] if p["kind"] == "collective" else [f"member:{p['lead_member']}"]
    if not plan.add(d0, "submit", lead_roles):
        return
    day = d0
    for m in p.get("cosigners") or ():
        day = _after(d0, rng, 0, 3)
        if rng.random() < 0.9:
            if plan.add(day, "confirm_cosign", [f"member:{m}"]):
                proposers.append(m)
        else:
            plan.add(day, "decline_cosign", [f"member:{m}"])
    if len(plan.actions) < 1 + len(p.get("cosigners") or ()):
        return
    day = _after(day, rng, 3, 10)
    if not plan.add(day, "classify", ["reviewer"]):
        return
    roll = rng.random()
    day = _after(day, rng, 1, 4)
    targets = [ref for ref, on in registered if day - timedelta(days=30) <= on < day]
    decision = ("register" if roll < 0.84 else "merge" if roll < 0.88 and targets
                else "convert_to_suggestion" if roll < 0.92 else "convert_to_opinion"
                if roll < 0.94 else "reject" if roll < 0.97 else "return")
    data = {"decision": decision}
    if decision == "merge":
        data["merged_into_ref"] = rng.choice(targets)
    if decision == "reject":
        data["ground"] = rng.choice(GROUNDS)
    if decision == "return":
        data["reason"] = "建议内容不够具体，请补充后重新提交"
    disputed = rng.random() < 0.05
    if not plan.add(day, "propose", ["reviewer"], dict(data, disputed=disputed)):
        return
    day = _after(day, rng, 1, 5)
    if not plan.add(day, "decide", ["admin"] if disputed else ["reviewer"]):
        return
    if decision != "register":
        return
    registered.append((record["ref"], day))
    day = _after(day, rng, 3, 10)
    co = [co_unit[0]] if co_unit else []
    if not plan.add(day, "assign", ["admin"], {"lead_unit": unit[0], "co_units": co}):
        return
    assigned = day
    if rng.random() < 0.06:
        key_day = _after(day, rng, 0, 5)
        leaders = rng.sample(LEADERS, 2)
        plan.add(key_day, "mark_key", ["admin"], {"supervisors": leaders})
    if rng.random() < 0.05:
        day = _after(day, rng, 1, 4)
        if not plan.add(day, "object", [f"unit:{unit[0]}"],
                        {"reason": "该事项不属于本单位职责"}):
            return
        day = _after(day, rng, 2, 6)
        if not plan.add(day, "reassign", ["admin"], {"lead_unit": unit[0], "co_units": co}):
            return
        assigned = day
    day = _after(day, rng, 1, 5)
    if not plan.add(day, "start", [f"unit:{unit[0]}"]):
        return
    day = _after(day, rng, 3, 15)
    if not plan.add(day, "contact", [f"unit:{unit[0]}"], {"method": "visit"}):
        return
    late = rng.random() < 0.08
    answer_day = assigned + timedelta(days=rng.randint(100, 140) if late
                                      else rng.randint(35, 80))
    for u in co:
        plan.add(day + timedelta(days=rng.randint(1, (answer_day - day).days - 1)),
                 "co_opinion", [f"unit:{u}"], {"text": "协办意见：同意主办单位办理意见，并配合落实。"})
    day = answer_day
    _answer_round(rng, plan, record, day, unit, proposers)


def _answer_round(rng, plan, record, day, unit, proposers, round_=1):
    category = rng.choices("ABCD", weights=[45, 35, 15, 5])[0]
    if not plan.add(day, "answer", [f"unit:{unit[0]}"],
                    {"category": category, "text": "经研究，办理情况答复如下……"}):
        return
    day = _after(day, rng, 1, 5)
    if not plan.add(day, "release", ["reviewer"]):
        return
    roll = rng.random()
    rating = ("satisfied" if round_ > 1 or roll < 0.8 else "basically_satisfied"
              if roll < 0.97 else "dissatisfied")
    for who in proposers or ["collective"]:
        day = _after(day, rng, 1, 10)
        roles = ["admin"] if who == "collective" else [f"member:{who}"]
        data = {"rating": rating, "evaluator": who} if who == "collective" else {
            "rating": rating}
        if not plan.add(day, "evaluate", roles, data):
            return
    day = _after(day, rng, 1, 5)
    if rating == "dissatisfied":
        if plan.add(day, "rehandle", ["admin"]):
            _answer_round(rng, plan, record, _after(day, rng, 10, 25), unit, proposers, 2)
        return
    if plan.add(day, "close", ["admin"]):
        if rng.random() < 0.05:
            plan.add(_after(day, rng, 5, 30), "mark_excellent", ["admin"])
