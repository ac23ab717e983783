"""Demo liaison data for a county: stations across its townships and villages,
and a year of requests, consultations and 社情民意 as import records.

Deterministic for a seed. The 社情民意 figures follow 长子 2023 (412 collected,
108 reported to the city, 32 to the province, 10 national) scaled to the part
of the year that has passed.
"""
import random
from datetime import datetime, time, timedelta

REQUEST_TOPICS = {
    "教育": ["学校门口接送拥堵", "村小缺少体育器材", "留守儿童课后无人看管"],
    "医疗卫生": ["村卫生室药品不全", "老人慢病取药不便", "乡镇卫生院夜间无人值班"],
    "法律服务": ["宅基地边界纠纷", "农民工工资拖欠", "邻里排水纠纷调解"],
    "农业生产": ["灌溉机井损坏", "玉米收购价格信息不畅", "农机作业道路难行"],
    "养老助残": ["独居老人吃饭难", "残疾人出行无障碍设施缺失", "日间照料中心利用率低"],
    "就业创业": ["返乡青年创业贷款咨询", "妇女灵活就业技能培训", "脱贫户务工信息"],
    "环境卫生": ["垃圾清运不及时", "村内排水沟堵塞", "养殖场异味扰民"],
    "道路设施": ["村口路灯不亮", "通村公路坑洼", "公交站台缺少雨棚"],
}
OPINION_TOPICS = [
    "关于加强农村留守老人助餐服务的建议", "关于规范校外培训机构收费的建议",
    "关于加快农村供水管网改造的建议", "关于解决县城停车难的建议",
    "关于支持小米产业品牌建设的建议", "关于提升乡镇卫生院服务能力的建议",
    "关于治理农村人居环境的建议", "关于保护上党梆子传承的建议",
    "关于加强电信诈骗防范宣传的建议", "关于促进返乡创业的建议",
    "关于改善农村客运服务的建议", "关于推进秸秆综合利用的建议"]
CONSULTATION_TOPICS = [
    ("party_government", "老旧小区加装电梯"), ("citizens", "村内停车秩序"),
    ("members", "小米产业提质增效"), ("citizens", "农村垃圾分类"),
    ("party_government", "城乡学校布局调整"), ("members", "乡村文化礼堂利用"),
    ("citizens", "集市占道经营治理"), ("party_government", "农村饮水安全"),
    ("members", "养老服务设施建设"), ("citizens", "通村公路养护"),
    ("members", "红色文化资源保护"), ("party_government", "营商环境优化")]


def stations(places, member_ids, seed=140428):
    """Station bodies for POST /api/v1/stations."""
    rng = random.Random(seed)
    pool = list(member_ids)
    rng.shuffle(pool)
    position = 0

    def pick(n):
        nonlocal position
        chosen = [pool[(position + k) % len(pool)] for k in range(min(n, len(pool)))]
        position += n
        return chosen
    out = []
    for t in places:
        out.append({"id": f"st-{t['code']}", "name": f"{t['name']}委员工作站", "kind": "studio",
                    "place_code": str(t["code"]), "members": pick(3)})
        for v in (t.get("villages") or ())[:2]:
            out.append({"id": f"room-{v['code']}", "name": f"{v['name']}协商议事室",
                        "kind": "room", "place_code": str(v["code"]),
                        "members": pick(rng.choice((2, 2, 3)))})
    first = places[0]
    out.append({"id": f"home-{first['code']}", "name": f"{first['name']}委员之家",
                "kind": "home", "place_code": str(first["code"]),
                "members": pick(4)})
    for t in places[1:3]:
        out.append({"id": f"lz-{t['code']}", "name": f"{t['name']}委员联络站",
                    "kind": "liaison", "place_code": str(t["code"]),
                    "members": pick(2)})
    return out


def _at(day, rng, start=8, end=18):
    return datetime.combine(day, time(rng.randrange(start, end), rng.choice((0, 15, 30, 45))))


def _fmt(dt):
    return dt.strftime("%Y-%m-%dT%H:%M")


def requests(station_list, *, year, until, count=300, seed=7, org="140428"):
    rng = random.Random(seed)
    first = datetime(year, 1, 1).date()
    span = max((until - first).days, 1)
    out = []
    for i in range(count):
        st = rng.choice(station_list)
        sid, members = st["id"], st["members"]
        staff = [f"station:{sid}"]
        topic = rng.choice(sorted(REQUEST_TOPICS))
        filed = _at(first + timedelta(days=rng.randrange(span)), rng)
        rec = {"kind": "request", "ref": f"{year}-{i + 1:04d}", "at": _fmt(filed), "as": staff,
               "data": {"station_id": sid, "topic": topic,
                        "category": rng.choice(("appeal", "appeal", "wish", "service")),
                        "title": rng.choice(REQUEST_TOPICS[topic]),
                        "description": f"群众反映：{rng.choice(REQUEST_TOPICS[topic])}，希望委员帮助协调。",
                        "contact": f"139{rng.randrange(10 ** 8):08d}",
                        "channel": rng.choice(("station", "phone", "online"))},
               "actions": []}
        age = (until - filed.date()).days
        now = filed
        steps = ["dispatch", "accept", "close", "rate"]
        if age < 3:
            steps = steps[:rng.randrange(0, 3)]
        elif age < 20:
            steps = steps[:rng.randrange(1, 4)]

        def add(action, who, hours, **data):
            nonlocal now
            now = now + timedelta(hours=hours)
            if now.date() > until:
                return False
            rec["actions"].append({"action": action, "at": _fmt(now), "as": who,
                                   "data": data})
            return True

        member = rng.choice(members)
        for step in steps:
            if step == "dispatch":
                if not add("dispatch", staff, rng.choice((2, 5, 20, 30)), member_id=member):
                    break
                if rng.random() < 0.12 and len(members) > 1:
                    add("decline", [f"member:{member}"], 6, reason="近期外出，无法及时办理")
                    member = rng.choice([m for m in members if m != member])
                    add("dispatch", staff, 3, member_id=member)
            elif step == "accept":
                if not add("accept", [f"member:{member}"], rng.choice((2, 8, 30, 60))):
                    break
            elif step == "close":
                resolved = rng.random() < 0.9
                if not add("close", [f"member:{member}"], rng.choice((24, 72, 200, 300, 420)),
                           result="已协调有关部门办理" if resolved else "已协调但未彻底解决",
                           resolved=resolved):
                    break
                if not resolved and rng.random() < 0.5:
                    if add("escalate", [f"member:{member}"], 24, to="proposal"):
                        rec["actions"][-1]["target_id"] = f"{org}-rq-RQ-{rec['ref']}"
                    break
            elif step == "rate":
                add("rate", staff, 30, score=rng.choice((5, 5, 5, 4, 4, 3)))
        out.append(rec)
    return out


def consultations(station_list, *, year, until, seed=11):
    rng = random.Random(seed)
    rooms = [s for s in station_list if s["kind"] in ("room", "studio")]
    out = []
    first = datetime(year, 1, 1).date()
    span = max((until - first).days - 20, 1)
    for i, (source, title) in enumerate(CONSULTATION_TOPICS):
        st = rooms[i % len(rooms)]
        start = _at(first + timedelta(days=rng.randrange(span)), rng)
        who = [f"member:{st['members'][0]}"] if source == "members" else [f"station:{st['id']}"]
        rec = {"kind": "consultation", "ref": f"{year}-{i + 1:02d}", "at": _fmt(start),
               "as": who, "data": {"title": title, "source": source, "station_id": st["id"]},
               "actions": []}
        staff, office = [f"station:{st['id']}"], ["admin"]
        plan = [("advance", staff, {}), ("advance", staff, {"members": st["members"]}),
                ("advance", staff, {"outcomes": [f"{title}问题形成协商意见 3 条"]}),
                ("advance", office, {}),
                ("add_followup", office, {"item": f"落实{title}协商意见", "owner": "县政府办",
                                          "due": (start + timedelta(days=60)).date().isoformat()}),
                ("advance", office, {}),
                ("complete_followup", office, {"followup_id": "F1", "note": "已落实"}),
                ("advance", office, {}),
                ("advance", office, {"feedback": "协商意见已落实，群众满意"})]
        now = start
        for action, actor, data in plan[:rng.randrange(2, len(plan) + 1)]:
            now += timedelta(days=rng.randrange(3, 12))
            if now.date() > until:
                break
            rec["actions"].append({"action": action, "at": _fmt(now), "as": actor,
                                   "data": data})
        out.append(rec)
    return out


def opinions(member_ids, station_list, *, year, until, seed=13):
    """About 412 a year: ~108 reported to the city, 32 to the province, 10 national."""
    rng = random.Random(seed)
    first = datetime(year, 1, 1).date()
    span = max((until - first).days, 1)
    share = min(span / 365, 1)
    count = round(412 * share)
    city, province, national = (set(rng.sample(range(count), round(n * share)))
                                for n in (108, 32, 10))
    province |= national
    city |= province
    out = []
    for i in range(count):
        day = first + timedelta(days=int(i * span / max(count, 1)))
        at = _at(day, rng)
        if rng.random() < 0.85:
            author = rng.choice(member_ids)
            rec_as, data = [f"member:{author}"], {}
        else:
            st = rng.choice(station_list)
            rec_as, data = [f"station:{st['id']}"], {"station_id": st["id"]}
        data.update(title=rng.choice(OPINION_TOPICS), category="社会民生",
                    content="反映情况：……。原因分析：……。建议：……。")
        rec = {"kind": "opinion", "ref": f"{year}-{i + 1:04d}", "at": _fmt(at), "as": rec_as,
               "data": data, "actions": []}
        now = at
        plan = []
        if rng.random() < 0.06 and i not in city:
            plan = [("reject", {"reason": "内容与已编发信息重复"})]
        elif i in city or rng.random() < 0.75:
            plan = [("accept", {}), ("issue", {"issue_no": i // 8 + 1})]
            if i in city:
                plan.append(("report", {"level": "city"}))
                if rng.random() < 0.45:
                    plan.append(("adopt", {"level": "city"}))
            if i in province:
                plan.append(("report", {"level": "province"}))
                if rng.random() < 0.4:
                    plan.append(("adopt", {"level": "province"}))
                if rng.random() < 0.2:
                    plan.append(("instruct", {"level": "province", "leader": "省领导"}))
            if i in national:
                plan.append(("report", {"level": "national"}))
                if rng.random() < 0.3:
                    plan.append(("adopt", {"level": "national"}))
        for action, body in plan:
            now += timedelta(days=rng.randrange(2, 10))
            if now.date() > until:
                break
            rec["actions"].append({"action": action, "at": _fmt(now), "as": ["admin"],
                                   "data": body})
        out.append(rec)
    return out
