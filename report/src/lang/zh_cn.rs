//! The report in Simplified Chinese, in the register of the hospitals'
//! and health commissions' own reports ("派出专家 24 名，诊疗门诊患者
//! 33 人次，开展手术 27 台"): each figure with its measure word.

use schemas::Metric;

use super::Text;

pub fn metric(metric: Metric) -> &'static str {
    match metric {
        Metric::OutpatientVisits => "门诊诊疗",
        Metric::Surgeries => "手术",
        Metric::ComplexCaseConsultations => "疑难病例会诊",
        Metric::TeachingRounds => "教学查房",
        Metric::Lectures => "专题讲座",
        Metric::StaffTrained => "培训当地医务人员",
        Metric::TechniquesIntroduced => "引进新技术",
        Metric::TechniquesLocalized => "新技术本地化",
        Metric::PapersPublished => "发表论文",
        Metric::ResearchProjectsFunded => "获批科研项目",
        Metric::DepartmentsEstablished => "新建科室",
        Metric::TelemedicineSessions => "远程医疗服务",
        Metric::MedicinesDonatedValue => "捐赠药品",
        Metric::MissionsDispatched => "派出医疗队",
        Metric::ExpertsDispatched => "派出专家",
        Metric::MissionsCompleted => "完成帮扶任务",
        Metric::ExpertDays => "专家驻点服务",
    }
}

/// The measure word a figure of `metric` takes.
pub fn unit(metric: Metric) -> &'static str {
    match metric {
        Metric::OutpatientVisits => "人次",
        Metric::Surgeries => "台",
        Metric::ComplexCaseConsultations => "例",
        Metric::TeachingRounds | Metric::TelemedicineSessions => "次",
        Metric::Lectures => "场",
        Metric::StaffTrained | Metric::ExpertsDispatched => "名",
        Metric::TechniquesIntroduced
        | Metric::TechniquesLocalized
        | Metric::ResearchProjectsFunded => "项",
        Metric::PapersPublished => "篇",
        Metric::DepartmentsEstablished => "个",
        Metric::MedicinesDonatedValue => "元",
        Metric::MissionsDispatched | Metric::MissionsCompleted => "批",
        Metric::ExpertDays => "人·天",
    }
}

pub const TEXT: Text = Text {
    html_lang: "zh-CN",
    doc_title: "医疗帮扶工作报告：{period}",
    h1: "医疗帮扶项目工作量与成效",
    meta_period: "统计期间：",
    meta_generated: "{when}根据分析数据表（{backend}）生成",
    every_region: "全部地区",
    regions_label: "地区：",
    list_sep: "、",
    one_program: "共 1 个项目",
    programs: "共 {n} 个项目",
    period_range: "{from}至{to}",
    period_none: "暂无数据",
    no_programs: "本期间没有项目有统计数据。",
    no_programs_in_regions: "本期间所选地区没有项目有统计数据。",
    program_label: "项目编号",
    program_empty: "本期间该项目暂无统计数据。",
    lead: "{period}，该项目共派出医疗队 {missions_dispatched} 批（专家 {experts_dispatched} \
名），完成帮扶任务 {missions_completed} 批，专家驻点服务 {expert_days} 人·天。诊疗门诊患者 \
{outpatient_visits} 人次，参与手术 {surgeries} 台（其中主刀 {performed} 台、指导 {supervised} \
台、协助 {assisted} 台{unspecified}），开展疑难病例会诊 {complex_case_consultations} 例、教学查房 \
{teaching_rounds} 次、专题讲座 {lectures} 场，培训当地医务人员 {staff_trained} 名。引进新技术 \
{techniques_introduced} 项，其中 {techniques_localized} 项实现本地化（首次由当地医务人员独立开展）；\
发表论文 {papers_published} 篇。",
    unspecified_roles: "，未注明角色 {n} 台",
    headline: [
        "派出医疗队（批）",
        "门诊诊疗（人次）",
        "手术（台）",
        "疑难病例会诊（例）",
        "培训当地医务人员（名）",
        "新技术本地化（项）",
    ],
    every_metric: "全部指标",
    th_metric: "指标",
    th_total: "合计",
    th_unit: "单位",
    month_by_month: "逐月情况",
    chart_figures: "图表数据",
    th_month: "月份",
    indicators: "成效指标",
    indicators_note: "均为统计期间合计数之比（而非各比值的平均）；分母为 0 时记为“–”。",
    th_indicator: ["指标", "数值", "分子", "分母", "计算方法"],
    indicator: [
        ("每人·天门诊诊疗人次", "门诊诊疗人次 ÷ 专家驻点服务人·天"),
        ("每批完成任务的手术台数", "手术台数 ÷ 完成帮扶任务批数"),
        ("新技术本地化率", "新技术本地化项数 ÷ 引进新技术项数"),
        (
            "医疗队主刀或指导手术占比",
            "（主刀 + 指导）台数 ÷（主刀 + 指导 + 协助）台数",
        ),
    ],
    where_title: "帮扶地区分布",
    where_note: "各地区数据均包含其下辖地区。",
    th_region: "地区",
    th_level: "级别",
    more_regions: "……另有 {n} 个地区未列出：可用 `--region` 缩小报告范围，或直接查询 \
`daily_metrics`。",
    tl_title: "数据报送及时性",
    tl_intro: "各项目业务记录自开展工作之日起至首次报送之日所隔天数，反映报送是否及时。每条记录只计 \
1 次，无论其后更正多少次；天数按首次报送计算，更正不会使记录变为迟报。",
    tl_arrival: "记录的报送时间为其消息到达本系统 Kafka 主题的时间（消息时间戳；重复投递时取最早一次），\
因此重放主题或执行 `outreach rebuild` 不会改变这些数据。用 `outreach publish` 从文件补录的数据，\
以发布时间为报送时间，无论所报工作多早：其天数自开展工作之日计至发布之日。",
    tl_terms: "中位数：半数记录在开展工作后该天数内报送；第 90 百分位数：90% 的记录在该天数内报送\
（最近秩法）。占比和天数仅统计报送时间已知的记录；开始记录报送时间之前存入的记录只计入“报送时间不详”\
（报送时间均不详时记为“–”）。按整月统计：记录计入其工作日所在月份，统计期间涉及的月份均完整计入。",
    tl_regions: "地区筛选不适用于本节：报送时间按机构和项目记录，不分地区，因此以下数据涵盖全部地区。",
    tl_scope: "报送机构：仅限本账号有权查看的机构。",
    tl_programs: "各项目汇总",
    th_tl: [
        "项目",
        "报送机构",
        "月份",
        "记录数",
        "更正",
        "撤回",
        "报送时间不详",
        "中位数（天）",
        "第 90 百分位数（天）",
        "7 天内报送",
        "30 天内报送",
    ],
    tl_institution_months: "各机构逐月情况",
    tl_none: "该项目在上述月份没有业务记录。",
    quality: "数据质量",
    quarantined: "隔离的消息",
    quarantined_in_period: "（本期间收到）",
    quarantine_note: "按整个数据流统计，不受上述项目和地区筛选的限制：被拒收的消息可能既无项目也无地区。",
    quarantine_hidden: "本账号无权查看隔离区（其中包含所有机构的消息）：只有获授权查看全部机构的分析人员\
才能查看（`outreach grant-analyst LOGIN --all`）。",
    quarantine_none_in_period: "本期间未收到。",
    quarantine_none: "无：所有消息均有效。",
    quarantine_count: "共有 {n} 条消息被拒收，已连同原因完整保存在 `quarantine` 表中（并转发至死信主题）：",
    th_quarantine: ["原因", "消息数", "示例（原文）"],
    reproduce: "如何复现这些数据",
    this_page: "生成本页：",
    reproduce_text: "每个数字均为 `daily_metrics`（最细粒度；`program_metrics` 和 \
`regional_metrics` 的合计与之相同）在上述统计期间{regions}内的合计；地区行包含其下辖地区，月份行为该月\
各 `day` 之和，手术角色取自 `dims` 中的 `role`。各项目合计：",
    reproduce_regions: "和地区",
    reproduce_tl: "报送及时性数据取自 `reporting_lags`（按机构、项目、月份和报送天数统计的记录数），\
按项目、月份或机构汇总；按机构和月份的数据即 `reporting_timeliness` 视图的各行：",
    roles: ["主刀", "指导", "协助"],
    levels: ["国家", "省级", "地级", "县级"],
};
