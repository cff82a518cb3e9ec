//! The report in English (the default).

use schemas::Metric;

use super::Text;

pub fn metric(metric: Metric) -> &'static str {
    match metric {
        Metric::OutpatientVisits => "outpatient visits",
        Metric::Surgeries => "surgeries",
        Metric::ComplexCaseConsultations => "complex-case consultations",
        Metric::TeachingRounds => "teaching rounds",
        Metric::Lectures => "lectures",
        Metric::StaffTrained => "local staff trained",
        Metric::TechniquesIntroduced => "techniques introduced",
        Metric::TechniquesLocalized => "techniques localized",
        Metric::PapersPublished => "papers published",
        Metric::ResearchProjectsFunded => "research projects funded",
        Metric::DepartmentsEstablished => "departments established",
        Metric::TelemedicineSessions => "telemedicine sessions",
        Metric::MedicinesDonatedValue => "medicines donated",
        Metric::MissionsDispatched => "missions dispatched",
        Metric::ExpertsDispatched => "experts dispatched",
        Metric::MissionsCompleted => "missions completed",
        Metric::ExpertDays => "expert-days",
    }
}

pub const TEXT: Text = Text {
    html_lang: "en",
    doc_title: "Outreach report: {period}",
    h1: "Outreach programs: figures and outcomes",
    meta_period: "Period: ",
    meta_generated: "generated {when} from the analyst tables ({backend})",
    every_region: "every region",
    regions_label: "regions:",
    list_sep: ", ",
    one_program: "1 program",
    programs: "{n} programs",
    period_range: "{from} to {to}",
    period_none: "no figures recorded",
    no_programs: "No program has figures in this period.",
    no_programs_in_regions: "No program has figures in this period and these regions.",
    program_label: "Program",
    program_empty: "No figures for this program in this period.",
    lead: "From {period}, the program dispatched {missions_dispatched} expert teams \
({experts_dispatched} experts) and completed {missions_completed} missions, with {expert_days} \
expert-days on site. The teams saw {outpatient_visits} outpatients, took part in {surgeries} \
surgeries ({performed} performed, {supervised} supervised, {assisted} assisted{unspecified}) \
and {complex_case_consultations} complex-case consultations, gave {teaching_rounds} teaching \
rounds and {lectures} lectures, and trained {staff_trained} local staff. \
{techniques_introduced} new techniques were introduced and {techniques_localized} localized \
(performed independently by local staff for the first time); {papers_published} papers were \
published.",
    unspecified_roles: ", {n} without a role",
    headline: [
        "expert teams dispatched",
        "outpatients",
        "surgeries",
        "complex cases",
        "local staff trained",
        "techniques localized",
    ],
    every_metric: "Every metric",
    th_metric: "metric",
    th_total: "total",
    th_unit: "unit",
    month_by_month: "Month by month",
    chart_figures: "The figures behind the charts",
    th_month: "month",
    indicators: "Outcome indicators",
    indicators_note: "Ratios of sums over the period (never averages of ratios); – where the \
denominator is 0.",
    th_indicator: [
        "indicator",
        "value",
        "numerator",
        "denominator",
        "computed as",
    ],
    indicator: [
        (
            "Outpatients per expert-day",
            "outpatient visits ÷ expert-days",
        ),
        (
            "Surgeries per completed mission",
            "surgeries ÷ missions completed",
        ),
        (
            "Techniques localized per technique introduced",
            "techniques localized ÷ techniques introduced",
        ),
        (
            "Share of surgeries performed or supervised by the visiting team",
            "surgeries performed + supervised ÷ surgeries performed + supervised + assisted",
        ),
    ],
    where_title: "Where the work went",
    where_note: "Each region's figures include those of the regions under it.",
    th_region: "region",
    th_level: "level",
    more_regions: "… and {n} more regions: narrow the report with `--region`, or query \
`daily_metrics`.",
    tl_title: "Reporting timeliness",
    tl_intro: "How soon each program's activity records reached the statistics: the days from \
the day of the work to the record's first arrival. A record counts once, however often it was \
corrected, and the days are those of its first arrival: a correction does not make it late.",
    tl_arrival: "A record arrives when its message reaches the pipeline's Kafka topic (the \
message's timestamp; the earliest, if it was delivered more than once), so replaying the topics \
or `outreach rebuild` changes none of these figures. Files backfilled with `outreach publish` \
arrive when they are published, however old the work they report: their days run from the work \
to the publication.",
    tl_terms: "Median: half of the records arrived within that many days of the work; 90th \
percentile: 90% of them did (nearest rank). Shares and days are of the records whose arrival \
is known; records stored before arrivals were kept count under “arrival unknown” only (– where \
no arrival is known). Whole months: a record counts in the month of its day, for every month \
the period touches.",
    tl_regions: "The region filter does not apply here: arrivals are kept per institution and \
program, not per region, so these figures cover every region.",
    tl_scope: "Institutions: those this login may see.",
    tl_programs: "Every program",
    th_tl: [
        "program",
        "institution",
        "month",
        "records",
        "corrected",
        "withdrawn",
        "arrival unknown",
        "median days",
        "90th percentile days",
        "within 7 days",
        "within 30 days",
    ],
    tl_institution_months: "Each institution, month by month",
    tl_none: "No activity records of this program in these months.",
    quality: "Data quality",
    quarantined: "Messages quarantined",
    quarantined_in_period: " (received in the period)",
    quarantine_note: "Counted for the whole stream, whatever the programs and regions above: a \
refused message may name neither.",
    quarantine_hidden: "This login does not see the quarantine, which holds every institution's \
messages: only analysts granted every institution do (`outreach grant-analyst LOGIN --all`).",
    quarantine_none_in_period: "None received in the period.",
    quarantine_none: "None: every message was valid.",
    quarantine_count: "{n} messages were refused and kept whole, with the reason, in \
`quarantine` (and on the dead-letter topic):",
    th_quarantine: ["reason", "messages", "for example"],
    reproduce: "How to reproduce these figures",
    this_page: "This page: ",
    reproduce_text: "Every figure is a sum over `daily_metrics` (the finest grain; \
`program_metrics` and `regional_metrics` hold the same totals) for the period{regions} above; \
a region's row adds its sub-regions, a month's row adds `day`s of that month, and the surgery \
roles read `dims`' `role`. The program totals:",
    reproduce_regions: " and the regions",
    reproduce_tl: "The timeliness figures are read from `reporting_lags` (facts per institution, \
program, month and days to arrival), summed per program, month or institution; per institution \
and month they are the rows of `reporting_timeliness`:",
    roles: ["performed", "supervised", "assisted"],
    levels: ["country", "province", "prefecture", "county"],
};
