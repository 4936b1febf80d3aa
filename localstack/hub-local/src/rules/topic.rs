//! MQTT topic filters (`+` one level, `#` the rest), as rule `FROM` clauses use them.

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicFilter(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicFilterError {
    #[error("topic filter is empty")]
    Empty,
    #[error("'#' must be the whole last level")]
    MisplacedMultiLevel,
    #[error("'+' must be a whole level")]
    MisplacedSingleLevel,
}

impl TopicFilter {
    pub fn parse(filter: &str) -> Result<Self, TopicFilterError> {
        if filter.is_empty() {
            return Err(TopicFilterError::Empty);
        }
        let levels: Vec<&str> = filter.split('/').collect();
        for (i, level) in levels.iter().enumerate() {
            if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
                return Err(TopicFilterError::MisplacedMultiLevel);
            }
            if level.contains('+') && *level != "+" {
                return Err(TopicFilterError::MisplacedSingleLevel);
            }
        }
        Ok(Self(filter.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, topic: &str) -> bool {
        // Wildcards at the first level never match topics starting with '$' (MQTT 4.7.2).
        if topic.starts_with('$') && matches!(self.0.chars().next(), Some('+' | '#')) {
            return false;
        }
        let mut filter = self.0.split('/');
        let mut levels = topic.split('/');
        loop {
            match (filter.next(), levels.next()) {
                (Some("#"), _) => return true,
                (Some("+"), Some(_)) => {}
                (Some(f), Some(t)) if f == t => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let f = TopicFilter::parse("devices/+/telemetry").unwrap();
        assert!(f.matches("devices/a/telemetry"));
        assert!(!f.matches("devices/a/b/telemetry"));
        assert!(!f.matches("devices/a/telemetry/x"));
        assert!(!f.matches("devices/a"));
        let all = TopicFilter::parse("devices/#").unwrap();
        assert!(all.matches("devices/a/b/c"));
        assert!(all.matches("devices"));
        assert!(!TopicFilter::parse("#").unwrap().matches("$aws/things/x"));
        assert!(TopicFilter::parse("$aws/things/+/shadow/#")
            .unwrap()
            .matches("$aws/things/x/shadow/update"));
    }

    #[test]
    fn invalid_filters() {
        assert_eq!(TopicFilter::parse(""), Err(TopicFilterError::Empty));
        assert_eq!(
            TopicFilter::parse("a/#/b"),
            Err(TopicFilterError::MisplacedMultiLevel)
        );
        assert_eq!(
            TopicFilter::parse("a/b#"),
            Err(TopicFilterError::MisplacedMultiLevel)
        );
        assert_eq!(
            TopicFilter::parse("a/+b"),
            Err(TopicFilterError::MisplacedSingleLevel)
        );
    }
}
