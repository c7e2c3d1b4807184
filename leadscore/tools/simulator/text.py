"""Chinese text for the simulated CRM: form texts from the true intent, rep notes from the true stage.

Texts are drawn from template pools and then roughened the way real form input is: full-width
characters, typos, emoji, English words, empty answers. Pools are built on first use, not at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

INTENTS = ["询价", "产品咨询", "招商代理", "售后维修", "技术支持", "无效"]
INVALID_KINDS = ["spam", "ads", "job_seeker", "competitor"]

PRODUCTS = {
    "医疗器械": ["DR设备", "CT", "彩超", "监护仪", "呼吸机", "DR平板探测器"],
    "精密制造": ["传感器壳体", "CNC加工件", "精密模具", "PLC控制柜", "伺服电机"],
    "新能源汽车": ["电池壳体", "BMS", "充电桩", "电机控制器", "线束"],
    "美妆": ["包材", "OEM代工", "灌装线", "精华液配方", "口红管"],
    "教育": ["智慧教室", "录播系统", "在线题库", "教学平板"],
    "SaaS": ["CRM系统", "ERP", "私有化部署", "API接口", "数据中台"],
}
DEFAULT_PRODUCTS = ["设备", "产品", "解决方案", "PLC", "传感器"]

# Each intent's own templates. They share vocabulary on purpose: 询价 asks about 参数 too, 产品咨询 about
# 价格, 招商代理 about 代理价 and 拿货价, 售后维修 and 技术支持 both about 报错 and 上门.
_FORM_TEMPLATES = {
    "询价": [
        "想询问{product}报价，预算{budget}左右",
        "请问{product}多少钱？需要{qty}台",
        "麻烦发一份{product}的报价单，{when}采购",
        "我们准备采购{qty}套{product}，请尽快联系",
        "{product}什么价格，有没有优惠，预算大概{budget}",
        "急需{product}，{when}要到货，请报价",
        "想了解{product}的价格和交期，数量{qty}",
        "询价：{product} x{qty}，含税含运费",
        "需要{product}报价,{when}定",
        "公司计划{when}上一批{product}，预算{budget}，求报价",
        "{product} 报价 {qty}台 {when}",
        "hi，{product}的price能发一下吗，MOQ多少",
        "{product}批量采购能便宜多少，要{qty}台",
        "{product}含安装调试一共多少钱",
        "你们{product}最低什么价，参数符合要求就下单",
        "请报一下{product}的价格，配置按标准的就行",
    ],
    "产品咨询": [
        "想了解一下{product}的参数和功能",
        "你们的{product}和进口的比有什么优势？",
        "请问{product}支持哪些规格，有没有案例",
        "{product}的技术参数能发一份吗，我们在做选型",
        "看了官网的{product}，想详细了解一下",
        "咨询{product}，适用于{industry}行业吗",
        "能否提供{product}的彩页和样品",
        "{product}的精度/稳定性怎么样？有测试报告吗",
        "我们在对比几家{product}，想要一份产品资料",
        "想要{product}的datasheet和案例",
        "{product}的价格大概什么范围，主要想先了解功能",
        "{product}有哪些型号，各自适合什么场景",
        "你们{product}的质保和售后是怎么样的",
        "{product}能不能定制，交期一般多久",
    ],
    "招商代理": [
        "想做{product}在{city}的代理，需要什么条件",
        "我们是{city}的经销商，想代理你们的{product}",
        "招商政策是怎样的？{city}地区还有代理名额吗",
        "有意向加盟，做{product}区域代理，资金{budget}",
        "请问{product}怎么拿货，代理价多少",
        "想成为你们在{city}的合作伙伴，渠道有医院/工厂资源",
        "{product}的经销价格和出厂价差多少，想在{city}铺货",
        "做{product}代理的话，首批拿货要多少钱",
        "{city}的渠道商，{product}拿货价格能给多少",
        "我们有{city}的客户资源，想合作推广{product}",
        "{product}的区域代理怎么谈，价格体系发一下",
    ],
    "售后维修": [
        "我们的{product}坏了，开不了机，请安排维修",
        "{product}报错，需要售后上门",
        "去年买的{product}出故障了，怎么报修",
        "售后电话打不通，{product}需要维修",
        "{product}保修期内出现问题，请尽快处理",
        "{product}有异响，需要派人来看看",
        "{product}过保了，维修怎么收费",
        "换个{product}配件多少钱，原来的坏了",
        "{product}用了半年就不行了，找售后",
    ],
    "技术支持": [
        "{product}软件升级后无法连接，需要技术支持",
        "请问{product}的接口文档在哪里下载",
        "{product}参数怎么设置，有操作手册吗",
        "我们在调试{product}，遇到通讯问题",
        "需要工程师远程协助调试{product}",
        "{product}和我们现有系统怎么对接",
        "{product}报错代码E{qty}，怎么处理",
        "{product}的驱动/固件在哪下载",
        "新买的{product}不会用，能培训一下吗",
    ],
}
# Texts that two or three intents write word for word (the labeller cannot tell them apart either),
# with the intents that write them.
_BRIDGE_TEMPLATES = [
    ("{product}的价格和参数发我一下", ["询价", "产品咨询"]),
    ("麻烦发一份{product}的资料和价格", ["询价", "产品咨询", "招商代理"]),
    ("{product}有现货吗", ["询价", "产品咨询", "招商代理"]),
    ("{city}这边{product}什么价格", ["询价", "招商代理"]),
    ("{product}用不了了，请联系我", ["售后维修", "技术支持"]),
    ("{product}出问题了，怎么处理", ["售后维修", "技术支持"]),
    ("需要工程师看一下{product}", ["售后维修", "技术支持"]),
    ("想了解{product}，有没有案例", ["产品咨询", "招商代理"]),
]
# Texts that say nothing about intent: buyers, service callers, would-be agents and spammers all write them.
_AMBIGUOUS = [
    "在吗",
    "在吗？",
    "咨询一下",
    "你好",
    "您好",
    "请联系我",
    "了解一下",
    "有人吗",
    "想了解一下",
    "请回电",
    "你好，请联系我",
    "咨询",
    "您好，咨询一下",
    "请尽快联系我",
]
_AMBIGUOUS_PRODUCT = ["{product}", "了解{product}", "咨询{product}", "想咨询一下{product}", "{product}，请联系我"]
_AMBIGUOUS_CONTACT = ["{phone}", "电话{phone}", "请回电{phone}"]
_GREETINGS = ["你好，", "您好，", "你好 ", "您好！", "hi，", "老师好，", "在吗？", "打扰一下，"]
_CLOSINGS = ["，请联系我", "，谢谢", "，谢谢！", "，麻烦回电", "，尽快回复", "，微信联系", "，电话联系", "，请尽快联系"]
_CONTACTS = ["，电话{phone}", "，联系方式：{phone}", " 手机{phone}", "，回电{phone}"]
# Share of a real (non-junk) intent's texts that are ambiguous or bridge texts; what a competitor, posing
# as a buyer, writes like a buyer; what spam writes like anyone.
AMBIGUOUS_SHARE = 0.02
BRIDGE_SHARE = 0.03
COMPETITOR_BRIDGE_SHARE = 0.25
SPAM_AMBIGUOUS_SHARE = 0.12
_INVALID_TEMPLATES = {
    "spam": [
        "aaaaaa",
        "111",
        "测试",
        "test",
        "。。。",
        "你好",
        "asdfgh",
        "哈哈哈",
    ],
    "ads": [
        "加微信{wx}领取优惠券，代开发票",
        "SEO优化，百度排名首页，包月{budget}",
        "刷单兼职日结，加V:{wx}",
        "贷款秒批，无抵押，详询{wx}",
        "专业做网站小程序，价格优惠，联系{wx}",
        "出售企业客户名单，精准数据",
    ],
    "job_seeker": [
        "请问贵公司还招销售吗，我有三年经验",
        "应聘{product}工程师，简历怎么投",
        "想投简历，有没有实习岗位",
        "你们招聘的技术支持岗位还在吗",
    ],
    "competitor": [
        "想了解一下你们{product}的报价和参数，方便对比",
        "请发{product}详细技术参数和价格表",
        "你们的{product}用的什么方案，有白皮书吗",
        "{product}的核心部件是哪家的，出货量多大",
        "你们{product}给经销商的价格体系是怎样的",
    ],
}
_EMOJI = ["😊", "👍", "🙏", "🔥", "💰", "[握手]", "[微笑]", "～～", "!!!", "？？"]
_ENGLISH = ["ASAP", "OK", "price", "quote", "sample", "OEM", "thanks", "pls"]
_WHEN = ["本月", "下个月", "年底前", "Q3", "两周内", "尽快", "明年初", "3月份"]
_CITIES_FOR_TEXT = ["杭州", "上海", "深圳", "成都", "武汉", "西安", "苏州", "长沙"]
# Common misspellings in Chinese input methods (homophones and look-alikes).
_TYPOS = {"报价": "抱价", "设备": "设被", "联系": "连系", "价格": "价个", "参数": "参素", "维修": "为修"}

# Rep notes by true stage (index into STAGES).
STAGE_NOTES = {
    0: ["首次电话未接通，稍后再打", "留言未回复", "号码占线，改天再联系"],
    1: [
        "首次电话沟通，客户有初步兴趣",
        "已联系上，客户说先看看资料",
        "电话接通，约了下周详聊",
        "首次沟通，对方是项目对接人",
        "客户回复了，了解基本情况",
    ],
    2: [
        "确认需求：数量和使用场景已明确",
        "客户提出具体技术参数要求",
        "需求已确认，预算在申请中",
        "客户说明了采购时间表和预算范围",
        "现场了解需求，技术和采购都参与",
    ],
    3: [
        "已发送方案，等客户内部讨论",
        "方案沟通中，客户对配置有疑问",
        "修改方案第二版，客户要求降配",
        "与客户技术团队沟通方案细节",
        "方案讲解完成，客户在内部评估",
    ],
    4: [
        "样品已寄，等测试报告",
        "客户在做样品测试，预计两周出结果",
        "测试中，客户反馈个别指标需调整",
        "补寄样品，等待复测",
    ],
    5: [
        "已发报价单，等客户反馈",
        "客户嫌价格高，申请特价中",
        "报价已确认，客户走内部审批",
        "测试通过，需财务审批",
        "与采购沟通价格和付款方式",
    ],
    6: [
        "招标文件已获取，准备投标",
        "客户要求三家比价，已提交资料",
        "已投标，等待开标结果",
        "比价中，竞品报价更低",
    ],
    7: [
        "合同条款沟通中，法务在审",
        "合同已发客户盖章",
        "付款方式谈判中，客户要求分期",
        "合同在客户内部审批中",
    ],
}
VAGUE_NOTES = ["已跟进", "客户再考虑", "电话未接", "再联系", "同上", "跟进中", "无进展", "发了资料"]
ACTION_NOTES = {
    "wechat": ["已加微信，发送了产品资料", "加了客户微信", "微信已通过，约时间沟通"],
    "demo": ["技术演示已完成，客户反馈不错", "安排了线上演示，客户技术团队参加", "售前现场演示完成"],
    "sample": ["样品已寄出，等测试报告", "安排寄样，物流已发"],
    "finance": ["联系到财务处长，确认预算审批流程", "与财务沟通付款节点", "财务确认预算已批"],
    "decision_maker": ["见到总经理，表态支持", "与决策人沟通，认可方案", "拜访了院长/总经理"],
}
EVIDENCE_NOTES = {
    "方案": ["发送方案书", "方案已发"],
    "演示确认单": ["演示确认单已签"],
    "测试报告": ["测试通过，收到测试报告", "客户出具测试报告，指标合格"],
    "报价单": ["已发报价单", "正式报价已发"],
    "技术协议": ["技术协议已确认", "投标技术文件已提交"],
    "合同": ["合同初稿已发", "合同已寄出待盖章"],
}
WON_NOTES = ["收到付款凭证，安排发货", "已回款，准备交付", "签约完成，预付款到账"]
LOST_NOTES = ["客户已选竞品", "项目取消，预算砍掉", "客户不再回复，关闭", "价格没谈拢，丢单"]
INVALID_NOTES = {
    "spam": ["空号/无效线索", "乱填信息，无效"],
    "ads": ["推销广告，无效", "同行推销，关闭"],
    "job_seeker": ["求职者，已转HR", "找工作的，非客户"],
    "competitor": ["疑似同行打听价格", "竞品公司员工，关闭"],
}
DUPLICATE_NOTES = ["重复线索，已合并", "同一客户再次留资，已合并到原线索"]
NEXT_ACTIONS = {
    0: ["首次电话"],
    1: ["发送资料", "约需求沟通"],
    2: ["出方案", "安排演示"],
    3: ["修改方案", "约决策人"],
    4: ["跟进测试结果"],
    5: ["跟进报价反馈", "联系财务"],
    6: ["准备投标文件"],
    7: ["催合同盖章", "确认付款"],
}


# --- richer pools (stories with rich_text): more templates, paraphrases, overlap, signals mixed ----------------
# More ways each intent writes; the classic templates stay in the pool.
_RICH_FORM_TEMPLATES = {
    "询价": [
        "{product}怎么卖的，{qty}台起批吗",
        "想买{product}，大概多少钱一台",
        "{product}报个价，要开专票",
        "领导让我问下{product}的价，{when}要用",
        "{product}的价格表能发一份吗，预算{budget}",
        "请提供{product}正式报价，含三年质保",
        "我们医院/工厂要上{product}，先要个预算价",
        "{product}价钱多少，我们对比一下",
        "比较着急，{product}{qty}套，{when}到货，价格合适就定",
        "{product}年底有活动价吗",
        "采购{product}，需要报价和交货周期",
        "打算换一批{product}，预算{budget}以内，有推荐的吗",
        "{product}标配多少钱，选配另算吗",
        "要买{qty}个{product}，能给到什么价",
    ],
    "产品咨询": [
        "{product}有什么优势，跟同类比怎么样",
        "想看一下{product}的演示视频",
        "{product}适不适合我们{industry}用",
        "你们的{product}有没有成功案例可以参考",
        "{product}具体能做什么，有介绍资料吗",
        "在选{product}，想先了解下技术路线",
        "{product}的使用寿命和维护成本大概多少",
        "能安排看一下{product}的实物吗",
        "{product}有没有试用装/样机",
        "{product}符合国标吗，有认证证书吗",
        "麻烦介绍一下{product}，我们还在前期调研",
        "了解下{product}，后面可能会有采购计划",
    ],
    "招商代理": [
        "{city}这边有没有做{product}的总代",
        "我们在{city}做了十年渠道，想谈{product}的代理",
        "代理{product}有没有区域保护",
        "{product}招经销商吗，{city}的",
        "想加盟，门槛是多少，{product}返点怎么算",
        "做{product}分销，拿货量大能不能给账期",
        "{city}代理商，手上有医院和工厂客户，想合作{product}",
        "你们{product}的渠道政策能发我一份吗",
        "我们公司想做{product}的{city}区域独家",
    ],
    "售后维修": [
        "{product}不工作了，找谁修",
        "设备报警，{product}停机了，急",
        "{product}屏幕不亮，麻烦派工程师",
        "{product}保修卡丢了还能修吗",
        "{product}用着用着就死机，需要售后处理",
        "上次修过的{product}又坏了",
        "{product}配件在哪买，原厂的",
        "{product}需要年检/保养，怎么预约",
    ],
    "技术支持": [
        "{product}的SDK有没有，想二次开发",
        "{product}接我们系统老是断开",
        "请教一下{product}的参数标定方法",
        "{product}升级固件失败，怎么办",
        "{product}说明书看不懂，有视频教程吗",
        "{product}数据导不出来，求助",
        "{product}怎么接入ERP/MES",
        "{product}的通讯协议是什么，modbus吗",
    ],
}
_RICH_BRIDGE_TEMPLATES = [
    ("{product}价格和资料都发我看看", ["询价", "产品咨询", "招商代理"]),
    ("{product}怎么合作", ["询价", "招商代理"]),
    ("想了解{product}的价格政策", ["询价", "招商代理"]),
    ("{product}交期多久", ["询价", "产品咨询"]),
    ("{product}有没有样品", ["询价", "产品咨询", "招商代理"]),
    ("你们{product}质量怎么样，售后怎么保障", ["询价", "产品咨询"]),
    ("{product}有问题，需要你们的人联系我", ["售后维修", "技术支持"]),
    ("{product}的说明和配件", ["售后维修", "技术支持", "产品咨询"]),
    ("{product}能不能上门看看", ["售后维修", "技术支持", "产品咨询"]),
    ("关于{product}，请尽快联系", ["询价", "产品咨询", "售后维修", "技术支持", "招商代理"]),
]
_RICH_AMBIGUOUS = ["在不在", "有空回个电话", "想问问", "看到你们的广告", "朋友推荐的", "加个微信聊", "了解下", "hello"]
# A remark typical of another intent, added to some forms: a buyer also asks about service, a service caller
# also wants to buy. Keyed by the intent the remark sounds like.
_SIDE_REMARKS = {
    "询价": ["，顺便报个价", "，另外价格也发一下", "，如果合适想再订几台", "，有优惠吗"],
    "产品咨询": ["，参数也发我一下", "，有案例的话发一份", "，想先看资料"],
    "招商代理": ["，你们招代理吗", "，也考虑做代理"],
    "售后维修": ["，售后怎么保障", "，保修几年"],
    "技术支持": ["，对接有技术文档吗", "，需要工程师支持吗"],
}
# The remark a form of one intent borrows: from the intents it is most often confused with.
_SIDE_FROM = {
    "询价": ["产品咨询", "售后维修", "招商代理"],
    "产品咨询": ["询价", "技术支持", "招商代理"],
    "招商代理": ["询价", "产品咨询"],
    "售后维修": ["询价", "技术支持"],
    "技术支持": ["售后维修", "产品咨询", "询价"],
}
# Paraphrases applied word by word (each occurrence with probability 1/2).
_SYNONYMS = {
    "报价": ["报个价", "价格", "价钱"],
    "请问": ["想问下", "问一下", "请教下"],
    "了解": ["咨询", "问问", "看看"],
    "需要": ["要", "想要", "需"],
    "麻烦": ["劳驾", "辛苦"],
    "尽快": ["早点", "尽早", "快点"],
    "资料": ["材料", "介绍", "彩页"],
    "我们": ["我司", "我们公司", "咱们"],
    "多少钱": ["什么价", "啥价格", "多少米"],
    "维修": ["修理", "修一下"],
    "联系": ["联络", "沟通"],
}
_RICH_TYPOS = {**_TYPOS, "咨询": "资询", "代理": "带理", "售后": "收后", "价格": "架格", "技术": "技数", "采购": "采够"}
_RICH_INVALID_TEMPLATES = {
    "spam": ["123456", "ok", "？", "嗯", "随便看看", "xxxx", "不知道", "1"],
    "ads": [
        "低价出售二手{product}，加V:{wx}",
        "网站建设/抖音代运营，首月免费，{wx}",
        "工商注册代理记账，联系{wx}",
        "招聘兼职打字员，日结，{wx}",
    ],
    "job_seeker": ["应届生，想应聘贵公司销售岗", "请问招{product}相关的人吗，本人有经验", "求职，简历已发邮箱"],
    "competitor": [
        "{product}你们一年卖多少台",
        "{product}的成本构成能介绍下吗",
        "你们{product}的代工厂是哪家",
    ],
}

# Rep notes: more paraphrases per stage, more vague notes, and the customer's tone.
_RICH_STAGE_NOTES = {
    0: ["打了两次没人接", "加微信未通过", "短信已发，等回复", "对方说在开会，晚点再打"],
    1: ["初步聊了下，客户在收集资料", "客户留了邮箱，资料已发", "对接人是采购助理", "客户说先做内部沟通再联系"],
    2: ["客户明确了用量和场景", "需求基本清楚，等技术确认指标", "客户发来技术要求清单", "了解到是新项目，预算今年有"],
    3: ["方案初稿已给客户", "客户对方案提了修改意见", "方案在客户内部传阅", "针对客户场景调整了方案"],
    4: ["样机在客户现场试用", "客户测试数据出来一部分", "样品测试进行中，客户技术在跟"],
    5: ["报价已发，客户在比较", "客户要求再降点价", "价格基本谈妥，等审批", "报价有效期到月底"],
    6: ["投标资料准备中", "参加了比选，等结果", "招标挂网了，已报名"],
    7: ["合同在走法务流程", "合同条款基本确认", "等客户盖章回传", "商务条款最后确认中"],
}
_RICH_VAGUE_NOTES = ["没接", "再跟", "继续跟进", "客户忙", "下周再说", "等回复", "已沟通", "保持联系", "无"]
_RICH_ACTION_NOTES = {
    "wechat": ["微信已加，资料发过去了", "客户通过了好友申请"],
    "demo": ["远程演示做完了，客户挺感兴趣", "带客户看了演示"],
    "sample": ["样品今天发出", "寄样完成，单号已给客户"],
    "finance": ["和客户财务对了预算", "财务那边确认了付款流程"],
    "decision_maker": ["约到了老板，聊得不错", "见了决策人，介绍了方案"],
}
# The customer's tone, as a rep writes it: what a note says beyond the stage.
TONE_NOTES = {
    1: [
        "客户态度积极",
        "客户很认可",
        "对方表示预算充足",
        "客户催进度",
        "客户主动问交期",
        "决策层比较支持",
        "客户反馈很好",
        "客户说基本就定我们了",
        "对方很配合",
        "客户有紧迫感",
    ],
    -1: [
        "客户态度一般",
        "对方说不急",
        "客户还在看别家",
        "预算还没批下来",
        "客户回复很慢",
        "客户对价格比较敏感",
        "客户内部意见不统一",
        "感觉客户兴趣不大",
        "对方说领导还没点头",
        "客户有顾虑",
    ],
}


@dataclass(frozen=True)
class TextStyle:
    """The story's text knobs: pools (classic or rich) and how much the intents' texts overlap."""

    rich: bool = False
    bridge_share: float = 0.03
    ambiguous_share: float = 0.02
    mix_share: float = 0.0

    @classmethod
    def of(cls, story) -> TextStyle:
        return cls(story.rich_text, story.bridge_share, story.ambiguous_share, story.text_mix_share)


CLASSIC_STYLE = TextStyle()


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _paraphrase(text: str, rng: np.random.Generator) -> str:
    for word, alternatives in _SYNONYMS.items():
        if word in text and rng.random() < 0.5:
            text = text.replace(word, alternatives[rng.integers(len(alternatives))], 1)
    return text


def _roughen_more(text: str, rng: np.random.Generator) -> str:
    """Rich pools' extra noise: more typos, dropped punctuation, a doubled character."""
    if rng.random() < 0.1:
        hits = [w for w in _RICH_TYPOS if w in text]
        if hits:
            word = hits[rng.integers(len(hits))]
            text = text.replace(word, _RICH_TYPOS[word], 1)
    if rng.random() < 0.15:
        text = text.replace("，", " ").replace(",", " ")
    if rng.random() < 0.05 and text:
        i = int(rng.integers(len(text)))
        text = text[: i + 1] + text[i:]
    return text


def _halfwidth_to_fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _roughen(text: str, rng: np.random.Generator) -> str:
    """Apply the noise real form input has: typos, full-width runs, emoji and English words."""
    if rng.random() < 0.12:
        for right, wrong in _TYPOS.items():
            if right in text:
                text = text.replace(right, wrong, 1)
                break
    if rng.random() < 0.15:
        text = _halfwidth_to_fullwidth(text)
    if rng.random() < 0.2:
        text += _EMOJI[rng.integers(len(_EMOJI))]
    if rng.random() < 0.1:
        text += " " + _ENGLISH[rng.integers(len(_ENGLISH))]
    return text


def _budget_text(budget: float, rng: np.random.Generator) -> str:
    if not np.isfinite(budget):
        return ["面议", "不确定", "看方案"][rng.integers(3)]
    wan = budget / 10_000
    style = rng.integers(3)
    if style == 0:
        return f"{wan:.0f}万"
    if style == 1:
        return f"{budget:,.0f}元"
    return f"{wan:.0f}w"


def _pick(pool: list[str], rng: np.random.Generator) -> str:
    return pool[rng.integers(len(pool))]


def _decorate(core: str, phone: str | None, rng: np.random.Generator) -> str:
    """Greetings, closings and a contact number: the same for every intent, so they carry no intent."""
    if rng.random() < 0.35:
        core = _pick(_GREETINGS, rng) + core
    if rng.random() < 0.3:
        core += _pick(_CLOSINGS, rng)
    if phone and rng.random() < 0.06:
        core += _pick(_CONTACTS, rng).format(phone=phone)
    return core


def _core_template(
    intent: str, invalid_kind: str | None, phone: str | None, rng: np.random.Generator, style: TextStyle = CLASSIC_STYLE
) -> str:
    """The template of one text: the intent's own, a bridge shared with other intents, or an ambiguous one."""
    bridges = _BRIDGE_TEMPLATES + (_RICH_BRIDGE_TEMPLATES if style.rich else [])
    if intent == "无效":
        if invalid_kind == "spam" and rng.random() < SPAM_AMBIGUOUS_SHARE:
            return _pick(_AMBIGUOUS + (_RICH_AMBIGUOUS if style.rich else []), rng)
        if invalid_kind == "competitor" and rng.random() < COMPETITOR_BRIDGE_SHARE:
            return _pick([t for t, who in bridges if {"询价", "产品咨询"} & set(who)], rng)
        kind = invalid_kind or "spam"
        return _pick(_INVALID_TEMPLATES[kind] + (_RICH_INVALID_TEMPLATES[kind] if style.rich else []), rng)
    roll = rng.random()
    if roll < style.ambiguous_share:
        pool = _AMBIGUOUS + _AMBIGUOUS_PRODUCT + (_AMBIGUOUS_CONTACT if phone else [])
        return _pick(pool + (_RICH_AMBIGUOUS if style.rich else []), rng)
    if roll < style.ambiguous_share + style.bridge_share:
        return _pick([t for t, who in bridges if intent in who], rng)
    return _pick(_FORM_TEMPLATES[intent] + (_RICH_FORM_TEMPLATES[intent] if style.rich else []), rng)


def form_text(
    intent: str,
    invalid_kind: str | None,
    industry: str | None,
    city: str | None,
    budget: float,
    rng: np.random.Generator,
    phone: str | None = None,
    style: TextStyle = CLASSIC_STYLE,
) -> str:
    """One lead's form text, generated from its true intent (and the lead's own phone, which some texts quote).

    The classic style keeps the classic simulator's draws exactly (including its quirk of writing a missing city
    or phone as "nan"); the rich style treats NaN as missing and adds paraphrases, side remarks and noise."""
    if style.rich:
        industry, city, phone = (None if _missing(v) else v for v in (industry, city, phone))
    products = PRODUCTS.get(industry or "", DEFAULT_PRODUCTS)
    slots = {
        "product": products[rng.integers(len(products))],
        "qty": int(rng.choice([1, 2, 3, 5, 10, 20, 50, 100])),
        "budget": _budget_text(budget, rng),
        "when": _WHEN[rng.integers(len(_WHEN))],
        "city": city or _CITIES_FOR_TEXT[rng.integers(len(_CITIES_FOR_TEXT))],
        "industry": industry or "我们",
        "wx": f"wx{rng.integers(10_000, 99_999)}",
        "phone": phone or "",
    }
    template = _core_template(intent, invalid_kind, phone, rng, style)
    text = template.format(**slots)
    if style.rich and intent != "无效":
        text = _paraphrase(text, rng)
        if rng.random() < style.mix_share:
            text += _pick(_SIDE_REMARKS[_pick(_SIDE_FROM[intent], rng)], rng)
    if template not in _AMBIGUOUS + _AMBIGUOUS_CONTACT and invalid_kind not in {"spam", "ads"}:
        text = _decorate(text, phone, rng)
    text = _roughen(text, rng)
    return _roughen_more(text, rng) if style.rich else text


@cache
def _note_pool(key: str, rich: bool = False) -> tuple[str, ...]:
    """The note pool for a key such as "stage:3", "action:demo" or "won"."""
    kind, _, sub = key.partition(":")
    source = {
        "stage": lambda: STAGE_NOTES[int(sub)] + (_RICH_STAGE_NOTES[int(sub)] if rich else []),
        "vague": lambda: VAGUE_NOTES + (_RICH_VAGUE_NOTES if rich else []),
        "action": lambda: ACTION_NOTES[sub] + (_RICH_ACTION_NOTES[sub] if rich else []),
        "evidence": lambda: EVIDENCE_NOTES[sub],
        "won": lambda: WON_NOTES,
        "lost": lambda: LOST_NOTES,
        "invalid": lambda: INVALID_NOTES[sub],
        "duplicate": lambda: DUPLICATE_NOTES,
    }[kind]()
    return tuple(source)


def pick_notes(key: str, n: int, rng: np.random.Generator, *, rich: bool = False) -> np.ndarray:
    """n notes drawn from one pool, as an object array."""
    pool = np.array(_note_pool(key, rich), dtype=object)
    return pool[rng.integers(len(pool), size=n)]


def add_tone(notes: np.ndarray, tone: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Notes with a tone clause (tone +1 / -1; 0 leaves the note as it is), before or after the note."""
    notes = notes.copy()
    for sign in (1, -1):
        rows = np.flatnonzero(tone == sign)
        pool = np.array(TONE_NOTES[sign], dtype=object)
        clause = pool[rng.integers(len(pool), size=len(rows))]
        before = rng.random(len(rows)) < 0.3
        notes[rows] = np.where(before, clause + "，" + notes[rows], notes[rows] + "，" + clause)
    return notes
