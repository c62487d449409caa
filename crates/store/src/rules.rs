//! Credit rules every backend applies the same way: what a ledger entry may be and how large a
//! balance may grow. The backends map these onto guarded SQL; they do not re-derive them.

use crate::{LedgerKind, Result, StoreError};

/// The largest balance (available + held) an account may have, and the largest amount of one
/// entry. Far below `i64::MAX`, so no sum the ledger or a guard computes can overflow: SQLite
/// turns an integer overflow into a REAL without a word, PostgreSQL fails the statement.
pub const MAX_BALANCE: i64 = 1_000_000_000_000_000;

/// What became of a top-up or an adjustment.
#[derive(Debug, Clone)]
pub enum Credited {
    Done(crate::Account),
    NoAccount,
    /// The available balance would go below zero.
    WouldGoNegative {
        available: i64,
    },
    /// The balance would pass [`MAX_BALANCE`].
    OverCeiling {
        balance: i64,
    },
}

/// Refuses entries no caller may write: a top-up that is not positive, a zero adjustment, an
/// amount past [`MAX_BALANCE`], or a kind that only task transitions write.
pub fn check_credit(kind: LedgerKind, amount: i64) -> Result<()> {
    let valid = match kind {
        LedgerKind::Topup => amount > 0,
        LedgerKind::Adjust => amount != 0,
        _ => false,
    };
    if !valid || amount.unsigned_abs() > MAX_BALANCE as u64 {
        return Err(StoreError::Invalid(format!(
            "{} of {amount} is not allowed",
            kind.as_str()
        )));
    }
    Ok(())
}

/// Why a guarded credit did not apply, from the balance it saw: only a negative amount can
/// take the balance below zero, only a positive one past the ceiling.
pub fn refusal(available: i64, held: i64, amount: i64) -> Credited {
    if amount < 0 {
        Credited::WouldGoNegative { available }
    } else {
        Credited::OverCeiling {
            balance: available.saturating_add(held),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_bounded() {
        assert!(check_credit(LedgerKind::Topup, 1).is_ok());
        assert!(check_credit(LedgerKind::Topup, MAX_BALANCE).is_ok());
        assert!(check_credit(LedgerKind::Topup, MAX_BALANCE + 1).is_err());
        assert!(check_credit(LedgerKind::Topup, 0).is_err());
        assert!(check_credit(LedgerKind::Topup, -1).is_err());
        assert!(check_credit(LedgerKind::Adjust, -MAX_BALANCE).is_ok());
        assert!(check_credit(LedgerKind::Adjust, i64::MIN).is_err());
        assert!(check_credit(LedgerKind::Adjust, 0).is_err());
        assert!(check_credit(LedgerKind::Hold, 5).is_err());
    }

    #[test]
    fn refusals_say_why() {
        assert!(matches!(
            refusal(5, 0, -6),
            Credited::WouldGoNegative { available: 5 }
        ));
        assert!(matches!(
            refusal(MAX_BALANCE, 0, 1),
            Credited::OverCeiling { .. }
        ));
    }
}
