//! Finding stop strings in streamed text, holding back what could be the start of one.

use crate::error::{check, Result};

/// Finds stop strings in streamed text. Text that could be the start of one is held back, so
/// that no step shows part of a stop string that the next step completes.
pub(super) struct StopStrings {
    stops: Vec<String>,
    held: String,
}

impl StopStrings {
    const MAX_COUNT: usize = 16;
    const MAX_BYTES: usize = 256;

    pub(super) fn new(stops: &[String]) -> Result<Self> {
        check(stops.len() <= Self::MAX_COUNT, "stopStrings", "at most 16 strings", stops.len())?;
        for stop in stops {
            let fits = !stop.is_empty() && stop.len() <= Self::MAX_BYTES;
            check(fits, "stopStrings", "non-empty strings of at most 256 bytes", format!("{stop:?}"))?;
        }
        Ok(Self { stops: stops.to_vec(), held: String::new() })
    }

    /// Adds a piece of text; returns the text that can be shown now, and whether a stop string
    /// appeared (the text is then what came before it).
    pub(super) fn push(&mut self, piece: &str) -> (String, bool) {
        self.held.push_str(piece);
        if let Some(at) = self.stops.iter().filter_map(|stop| self.held.find(stop.as_str())).min() {
            self.held.truncate(at);
            return (std::mem::take(&mut self.held), true);
        }
        let keep = self.stops.iter().map(|stop| prefix_at_end(&self.held, stop)).max().unwrap_or(0);
        let shown = self.held.len() - keep;
        (self.held.drain(..shown).collect(), false)
    }

    /// The held-back text: the generation ended without completing a stop string.
    pub(super) fn take_held(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// The length of the longest proper prefix of `stop` that `text` ends with.
fn prefix_at_end(text: &str, stop: &str) -> usize {
    (1..stop.len()).rev().find(|&n| stop.is_char_boundary(n) && text.ends_with(&stop[..n])).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::StopStrings;

    fn run(stops: &[&str], pieces: &[&str]) -> (Vec<String>, bool) {
        let mut matcher = StopStrings::new(&stops.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let mut shown = Vec::new();
        for piece in pieces {
            let (text, stopped) = matcher.push(piece);
            shown.push(text);
            if stopped {
                return (shown, true);
            }
        }
        shown.push(matcher.take_held());
        (shown, false)
    }

    #[test]
    fn a_stop_string_split_over_pieces_is_never_shown() {
        assert_eq!(run(&["\n\nUser:"], &["Hi", " there\n", "\nUs", "er: next"]), (vec!["Hi".into(), " there".into(), "".into(), "".into()], true));
    }

    #[test]
    fn held_text_that_turns_out_not_to_stop_is_shown() {
        assert_eq!(run(&["END"], &["a E", "N", "x", "y"]), (vec!["a ".into(), "".into(), "ENx".into(), "y".into(), "".into()], false));
        assert_eq!(run(&["END"], &["a EN"]), (vec!["a ".into(), "EN".into()], false));
    }

    #[test]
    fn the_earliest_of_several_stop_strings_wins() {
        assert_eq!(run(&["cd", "b"], &["abcd"]), (vec!["a".into()], true));
    }

    #[test]
    fn multibyte_stop_strings_are_cut_on_character_boundaries() {
        assert_eq!(run(&["é!"], &["café", "?"]), (vec!["caf".into(), "é?".into(), "".into()], false));
    }

    #[test]
    fn bad_stop_strings_are_refused() {
        assert!(StopStrings::new(&["".to_string()]).is_err());
        assert!(StopStrings::new(&vec!["x".to_string(); 17]).is_err());
        assert!(StopStrings::new(&["x".repeat(257)]).is_err());
    }
}
