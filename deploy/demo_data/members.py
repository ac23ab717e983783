"""A realistic demo county roster: Chinese names, sectors, parties and
committees in proportions like a county CPPCC's (~200 members). Deterministic
for a given seed; ID numbers carry valid check digits; phones are in a range
reserved for fiction-like use (they are never dialled)."""
import random

from services.members import domain, roster

SURNAMES = ("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
            "苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史")
GIVEN = ("建国华明丽军红英平志强伟芳敏静秀兰杰涛斌磊鹏超霞燕玲晓红春梅海峰文博宇浩然思雨佳琪"
         "子涵欣怡俊杰晨阳嘉怡瑞雪振华立新卫东爱民淑珍桂英玉兰凤霞永刚宏伟国庆志刚")
ETHNICITIES = (("汉族", 97), ("回族", 2), ("满族", 1))
PARTIES = (("cpc", 38), ("none", 22), ("cndca", 8), ("cdl", 7), ("capd", 6), ("rcckmt", 5),
           ("pwdp", 5), ("jsfs", 5), ("zgd", 2), ("tdsgl", 2))
SECTORS = (("中共界", 16), ("经济界", 14), ("农业界", 12), ("教育界", 11), ("医药卫生界", 9),
           ("工商联界", 9), ("科技界", 6), ("文化艺术界", 5), ("民主党派界", 10),
           ("无党派人士界", 5), ("妇联界", 4), ("工会界", 3), ("共青团界", 2), ("特邀界", 8),
           ("社会福利和社会保障界", 3), ("民族宗教界", 2), ("体育界", 1), ("新闻出版界", 2))
COMMITTEES = (("提案委", 20), ("经济委", 18), ("农业和农村委", 16), ("社会法制委", 10),
              ("教科卫体委", 16), ("文史委", 8), ("人口资源环境委", 8))
EMPLOYERS = ("长子县人民医院", "长子县第一中学", "长子县农业农村局", "长子县工商联",
             "山西某农业科技有限公司", "长子县文化馆", "丹朱镇人民政府", "鲍店镇卫生院",
             "长子县职业中学", "长子县融媒体中心", "县司法局", "县妇联", "慈林镇中心校",
             "长子县中医院", "长子县青年企业家协会")
POSTS = ("主任", "副主任", "校长", "院长", "总经理", "科长", "教师", "医师", "会长", "职员")
PLACE_CODE = "140428"


def _pick(rng, weighted):
    items, weights = zip(*weighted)
    return rng.choices(items, weights=weights, k=1)[0]


def id_number(rng, place=PLACE_CODE):
    year = rng.randint(1958, 1992)
    first17 = (f"{place}{year}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
               f"{rng.randint(0, 999):03d}")
    return first17 + domain.id_check_digit(first17)


def members(count=200, seed=140428, term="第十届"):
    rng = random.Random(seed)
    seen = set()
    out = []
    for i in range(count):
        number = id_number(rng)
        while number in seen:
            number = id_number(rng)
        seen.add(number)
        if i == 0:
            role = "chair"
        elif i < 5:
            role = "vice_chair"
        elif i < 30:
            role = "standing"
        else:
            role = "member"
        committees = [_pick(rng, COMMITTEES)]
        if rng.random() < 0.25:
            second = _pick(rng, COMMITTEES)
            if second not in committees:
                committees.append(second)
        gender = "female" if rng.random() < 0.32 else "male"
        out.append({
            "name": rng.choice(SURNAMES) + "".join(rng.choice(GIVEN)
                                                   for _ in range(rng.choice((1, 2)))),
            "gender": gender, "ethnicity": _pick(rng, ETHNICITIES),
            "party": _pick(rng, PARTIES), "sector": _pick(rng, SECTORS),
            "committees": committees, "role": role, "term": term,
            "employer": rng.choice(EMPLOYERS), "post": rng.choice(POSTS),
            "phone": f"1{rng.choice('3589')}{rng.randint(0, 9)}{rng.randint(0, 99999999):08d}",
            "id_number": number, "appointment": "election" if i < count * 0.9 else "by_election",
            "appointed_on": "2021-12-28", "email": f"member{i + 1:04d}@example.org",
            "wechat_openid": f"oDemo{number[-8:]}" if i % 2 == 0 else None,
        })
    return out


def roster_csv(rows, encoding="utf-8"):
    """A roster CSV as committee offices keep it (Chinese headers and labels)."""
    import csv
    import io
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([h for h, _, _ in roster.COLUMNS])
    for row in rows:
        member = dict(row, _id="", seq=0)
        writer.writerow(roster.to_row(member, full=True))
    return buf.getvalue().encode(encoding)
