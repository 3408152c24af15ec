//! Who sees whom on a ticket. Presence and typing are about a ticket, so only those who may read
//! the ticket see any of it. Staff see everyone as they are. A customer sees what the
//! conversation itself will show them: that support is there and answering, never that someone
//! writes an internal note (that would announce a note they may not read), and never another
//! customer (a ticket's readers are its requester and staff, but a former requester or a demoted
//! agent may still be on record until their entry goes).
use super::{Subject, Viewer, can_see};
use crate::auth::Role;

/// What one person is doing on a ticket, weakest first: a person with several connections is
/// shown with the strongest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Activity {
    /// The ticket is open but its tab is hidden, or nothing was typed or clicked for a while.
    Idle,
    Viewing,
    /// The public reply composer is open.
    Replying,
    /// The internal note composer is open.
    Noting,
}

impl Activity {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "idle" => Self::Idle,
            "viewing" => Self::Viewing,
            "replying" => Self::Replying,
            "noting" => Self::Noting,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Viewing => "viewing",
            Self::Replying => "replying",
            Self::Noting => "noting",
        }
    }
}

/// What is being typed: a public reply or an internal note.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Typing {
    Public,
    Internal,
}

impl Typing {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Self::Public),
            "internal" => Some(Self::Internal),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Internal => "internal",
        }
    }
}

/// The two views of a ticket's presence: whoever gets one gets exactly what everyone of that
/// audience gets, so each change is worked out once per audience, not once per socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Audience {
    Staff,
    /// The ticket's requester.
    Customer,
}

/// Which view of the presence on a ticket in state `ticket` `viewer` gets, if any.
pub fn presence_audience(viewer: &Viewer, ticket: &Subject) -> Option<Audience> {
    if !matches!(ticket, Subject::Ticket { .. }) || !can_see(viewer, ticket) {
        return None;
    }
    Some(if viewer.role.is_staff() { Audience::Staff } else { Audience::Customer })
}

/// How a person of `role` doing `activity` appears to `audience`: the role and activity shown,
/// or `None` for not at all. Customers see staff as `agent` whatever their role (being an admin
/// is nobody's business on a ticket), an internal note being written as viewing.
pub fn presence_shown(audience: Audience, role: Role, activity: Activity) -> Option<(Role, Activity)> {
    match audience {
        Audience::Staff => Some((role, activity)),
        Audience::Customer if role.is_staff() => {
            Some((Role::Agent, if activity == Activity::Noting { Activity::Viewing } else { activity }))
        }
        Audience::Customer => None,
    }
}

/// Whether `audience` learns that a person of `role` is typing `kind`.
pub fn typing_shown(audience: Audience, role: Role, kind: Typing) -> bool {
    match audience {
        Audience::Staff => true,
        Audience::Customer => role.is_staff() && kind == Typing::Public,
    }
}

/// Whether someone of `role` may announce `activity`: only staff write internal notes.
pub fn may_announce(role: Role, activity: Activity) -> bool {
    role.is_staff() || activity != Activity::Noting
}

/// Whether someone of `role` may announce typing `kind`.
pub fn may_type(role: Role, kind: Typing) -> bool {
    role.is_staff() || kind == Typing::Public
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Activity; 4] = [Activity::Idle, Activity::Viewing, Activity::Replying, Activity::Noting];

    #[test]
    fn only_readers_of_the_ticket_see_its_presence() {
        let mine = Subject::Ticket { requester_id: Some("me".into()) };
        let theirs = Subject::Ticket { requester_id: Some("other".into()) };
        assert_eq!(presence_audience(&Viewer::new("me", Role::Customer), &mine), Some(Audience::Customer));
        assert_eq!(presence_audience(&Viewer::new("me", Role::Customer), &theirs), None);
        assert_eq!(presence_audience(&Viewer::new("me", Role::Agent), &theirs), Some(Audience::Staff));
        assert_eq!(presence_audience(&Viewer::anonymous(), &mine), None);
        assert_eq!(presence_audience(&Viewer::new("me", Role::Admin), &Subject::Article { published: true }), None);
    }

    #[test]
    fn a_customer_never_sees_a_note_being_written_nor_another_customer() {
        for role in [Role::Admin, Role::Agent, Role::Customer] {
            for activity in ALL {
                let shown = presence_shown(Audience::Customer, role, activity);
                if role.is_staff() {
                    let (r, a) = shown.expect("staff are shown to the requester");
                    assert_eq!(r, Role::Agent);
                    assert_ne!(a, Activity::Noting);
                } else {
                    assert_eq!(shown, None);
                }
                assert_eq!(presence_shown(Audience::Staff, role, activity), Some((role, activity)));
            }
            assert!(!typing_shown(Audience::Customer, role, Typing::Internal));
            assert_eq!(typing_shown(Audience::Customer, role, Typing::Public), role.is_staff());
            assert!(typing_shown(Audience::Staff, role, Typing::Internal));
        }
    }

    #[test]
    fn customers_cannot_announce_notes() {
        assert!(!may_announce(Role::Customer, Activity::Noting));
        assert!(may_announce(Role::Customer, Activity::Replying));
        assert!(may_announce(Role::Agent, Activity::Noting));
        assert!(!may_type(Role::Customer, Typing::Internal));
        assert!(may_type(Role::Admin, Typing::Internal));
    }

    #[test]
    fn the_strongest_activity_wins() {
        assert_eq!(ALL.iter().max(), Some(&Activity::Noting));
        assert!(Activity::Replying > Activity::Viewing && Activity::Viewing > Activity::Idle);
        for a in ALL {
            assert_eq!(Activity::parse(a.as_str()), Some(a));
        }
    }
}
