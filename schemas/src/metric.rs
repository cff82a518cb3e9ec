//! The metric catalogue (v1) and the specialty codes: which metrics exist,
//! their unit, and which `dims` keys and values each one allows.
//!
//! Adding a metric starts here: a name in the `catalogue!` list (which
//! declares the variant and its place in [`Metric::ALL`]), then every
//! `match` below (the compiler lists them, [`Metric::is_activity`] among
//! them). What else must change is listed by the tests that fail:
//! `docs/contract.md` and the JSON schema (`tests/contract.rs`), the
//! summary views of the migrations (`tests/metric_list.rs`).

/// Declares [`Metric`] and [`Metric::ALL`] from one list: a variant cannot
/// be declared and left out of `ALL` (which `ACTIVITY`, the decoder, the
/// contract's test and the transform's packed keys read), and `ALL` is in
/// declaration order (the transform packs a metric as `m as u32` and reads
/// it back as `Metric::ALL[i]`).
macro_rules! catalogue {
    ($($variant:ident),+ $(,)?) => {
        /// Every metric of the contract, the four derived from missions included.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Metric {
            $($variant),+
        }

        const METRIC_COUNT: usize = [$(stringify!($variant)),+].len();

        impl Metric {
            /// Every metric, in declaration order.
            pub const ALL: [Metric; METRIC_COUNT] = [$(Metric::$variant),+];
        }
    };
}

catalogue! {
    OutpatientVisits,
    Surgeries,
    ComplexCaseConsultations,
    TeachingRounds,
    Lectures,
    StaffTrained,
    TechniquesIntroduced,
    TechniquesLocalized,
    PapersPublished,
    ResearchProjectsFunded,
    DepartmentsEstablished,
    TelemedicineSessions,
    MedicinesDonatedValue,
    MissionsDispatched,
    ExpertsDispatched,
    MissionsCompleted,
    ExpertDays,
}

/// A dimension key and its allowed values (`None`: the specialty list).
type DimRule = (&'static str, Option<&'static [&'static str]>);

const SPECIALTY: DimRule = ("specialty", None);

/// How many metrics producers send: the length of [`Metric::ACTIVITY`].
const ACTIVITY_COUNT: usize = {
    let (mut i, mut n) = (0, 0);
    while i < Metric::ALL.len() {
        if Metric::ALL[i].is_activity() {
            n += 1;
        }
        i += 1;
    }
    n
};

impl Metric {
    /// The metrics an activity event may carry, in the order of
    /// [`Self::ALL`]: the decoder accepts these, and the bench generator
    /// draws from them by position. Derived from [`Self::is_activity`], so
    /// a new metric cannot be in one list and not the other.
    pub const ACTIVITY: [Metric; ACTIVITY_COUNT] = {
        let mut out = [Metric::OutpatientVisits; ACTIVITY_COUNT];
        let (mut i, mut n) = (0, 0);
        while i < Self::ALL.len() {
            if Self::ALL[i].is_activity() {
                out[n] = Self::ALL[i];
                n += 1;
            }
            i += 1;
        }
        out
    };

    /// Whether producers send this metric in activity events (`true`), or the
    /// transform derives it from mission events (`false`). Every variant is
    /// named, no `_` arm: a new metric does not compile until it is put on
    /// one side.
    pub const fn is_activity(self) -> bool {
        match self {
            Self::OutpatientVisits
            | Self::Surgeries
            | Self::ComplexCaseConsultations
            | Self::TeachingRounds
            | Self::Lectures
            | Self::StaffTrained
            | Self::TechniquesIntroduced
            | Self::TechniquesLocalized
            | Self::PapersPublished
            | Self::ResearchProjectsFunded
            | Self::DepartmentsEstablished
            | Self::TelemedicineSessions
            | Self::MedicinesDonatedValue => true,
            Self::MissionsDispatched
            | Self::ExpertsDispatched
            | Self::MissionsCompleted
            | Self::ExpertDays => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OutpatientVisits => "outpatient_visits",
            Self::Surgeries => "surgeries",
            Self::ComplexCaseConsultations => "complex_case_consultations",
            Self::TeachingRounds => "teaching_rounds",
            Self::Lectures => "lectures",
            Self::StaffTrained => "staff_trained",
            Self::TechniquesIntroduced => "techniques_introduced",
            Self::TechniquesLocalized => "techniques_localized",
            Self::PapersPublished => "papers_published",
            Self::ResearchProjectsFunded => "research_projects_funded",
            Self::DepartmentsEstablished => "departments_established",
            Self::TelemedicineSessions => "telemedicine_sessions",
            Self::MedicinesDonatedValue => "medicines_donated_value",
            Self::MissionsDispatched => "missions_dispatched",
            Self::ExpertsDispatched => "experts_dispatched",
            Self::MissionsCompleted => "missions_completed",
            Self::ExpertDays => "expert_days",
        }
    }

    /// A metric producers may send in an activity event (not a mission one).
    pub fn parse_activity(s: &str) -> Option<Self> {
        Self::ACTIVITY.iter().copied().find(|m| m.as_str() == s)
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|m| m.as_str() == s)
    }

    /// CNY amounts may carry two decimals; every other unit counts whole things.
    pub fn allows_decimals(self) -> bool {
        self == Self::MedicinesDonatedValue
    }

    pub fn unit(self) -> &'static str {
        match self {
            Self::OutpatientVisits | Self::StaffTrained | Self::ExpertsDispatched => "persons",
            Self::Surgeries => "procedures",
            Self::ComplexCaseConsultations => "cases",
            Self::TeachingRounds | Self::Lectures | Self::TelemedicineSessions => "sessions",
            Self::TechniquesIntroduced | Self::TechniquesLocalized => "techniques",
            Self::PapersPublished => "papers",
            Self::ResearchProjectsFunded => "projects",
            Self::DepartmentsEstablished => "departments",
            Self::MedicinesDonatedValue => "CNY",
            Self::MissionsDispatched | Self::MissionsCompleted => "missions",
            Self::ExpertDays => "person-days",
        }
    }

    /// The `dims` keys this metric allows, each with its allowed values.
    pub fn dims(self) -> &'static [DimRule] {
        match self {
            Self::OutpatientVisits => &[
                SPECIALTY,
                (
                    "setting",
                    Some(&["clinic", "free_clinic", "home_visit", "ward"]),
                ),
            ],
            Self::Surgeries => &[
                SPECIALTY,
                ("role", Some(&["performed", "assisted", "supervised"])),
            ],
            Self::ComplexCaseConsultations => &[SPECIALTY, ("mode", Some(&["onsite", "remote"]))],
            Self::TeachingRounds
            | Self::Lectures
            | Self::TechniquesLocalized
            | Self::DepartmentsEstablished => &[SPECIALTY],
            Self::StaffTrained => &[(
                "cadre",
                Some(&["physician", "nurse", "technician", "manager"]),
            )],
            Self::TechniquesIntroduced => &[
                SPECIALTY,
                (
                    "gap_level",
                    Some(&["national", "provincial", "regional", "county"]),
                ),
            ],
            Self::PapersPublished => &[
                ("indexing", Some(&["sci", "core", "other"])),
                ("authorship", Some(&["visiting", "local", "joint"])),
            ],
            Self::ResearchProjectsFunded => {
                &[("level", Some(&["national", "provincial", "municipal"]))]
            }
            Self::TelemedicineSessions => &[(
                "kind",
                Some(&[
                    "consultation",
                    "ward_round",
                    "imaging",
                    "pathology",
                    "teaching",
                ]),
            )],
            Self::MedicinesDonatedValue
            | Self::MissionsDispatched
            | Self::ExpertsDispatched
            | Self::MissionsCompleted
            | Self::ExpertDays => &[],
        }
    }

    /// Checks one `dims` entry against the catalogue.
    pub fn check_dim(self, key: &str, value: &str) -> Result<(), DimError> {
        let (_, allowed) = self
            .dims()
            .iter()
            .find(|(k, _)| *k == key)
            .ok_or(DimError::UnknownKey)?;
        let ok = match allowed {
            Some(values) => values.contains(&value),
            None => Specialty::parse(value).is_some(),
        };
        if ok {
            Ok(())
        } else {
            Err(DimError::NotAllowed)
        }
    }
}

/// Why a `dims` entry is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DimError {
    /// The metric allows no such key.
    UnknownKey,
    /// The key is allowed, the value is not in its list.
    NotAllowed,
}

/// The specialty codes of the contract.
pub struct Specialty;

impl Specialty {
    pub const ALL: [&'static str; 30] = [
        "cardiology",
        "respiratory",
        "gastroenterology",
        "endocrinology",
        "nephrology",
        "hematology",
        "oncology",
        "pathology",
        "obstetrics_gynecology",
        "pediatrics",
        "neonatology",
        "general_surgery",
        "orthopedics",
        "urology",
        "neurology",
        "ophthalmology",
        "ent",
        "critical_care",
        "emergency",
        "radiology",
        "ultrasound",
        "anesthesiology",
        "dermatology",
        "psychiatry",
        "rehabilitation",
        "traditional_chinese_medicine",
        "nursing",
        "general_practice",
        "management",
        "other",
    ];

    pub fn parse(s: &str) -> Option<&'static str> {
        Self::ALL.iter().copied().find(|c| *c == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_metrics_exclude_the_mission_ones() {
        assert_eq!(Metric::parse_activity("surgeries"), Some(Metric::Surgeries));
        assert_eq!(Metric::parse_activity("expert_days"), None);
        assert_eq!(Metric::parse("expert_days"), Some(Metric::ExpertDays));
        for m in Metric::ALL {
            assert_eq!(Metric::parse(m.as_str()), Some(m));
        }
    }

    #[test]
    fn activity_metrics_are_the_catalogue_in_order_minus_the_mission_ones() {
        let activity: Vec<Metric> = Metric::ALL
            .into_iter()
            .filter(|m| m.is_activity())
            .collect();
        assert_eq!(Metric::ACTIVITY.as_slice(), activity.as_slice());
        for m in Metric::ALL {
            let accepted = Metric::parse_activity(m.as_str()).is_some();
            assert_eq!(accepted, m.is_activity(), "{}", m.as_str());
        }
        assert!(!Metric::ExpertDays.is_activity());
    }

    #[test]
    fn dims_follow_the_catalogue() {
        assert_eq!(Metric::Surgeries.check_dim("role", "assisted"), Ok(()));
        assert_eq!(
            Metric::Surgeries.check_dim("role", "watched"),
            Err(DimError::NotAllowed)
        );
        assert_eq!(
            Metric::Surgeries.check_dim("setting", "ward"),
            Err(DimError::UnknownKey)
        );
        assert_eq!(Metric::Lectures.check_dim("specialty", "ent"), Ok(()));
        assert_eq!(
            Metric::Lectures.check_dim("specialty", "astrology"),
            Err(DimError::NotAllowed)
        );
        assert_eq!(
            Metric::MedicinesDonatedValue.check_dim("specialty", "ent"),
            Err(DimError::UnknownKey)
        );
    }
}
