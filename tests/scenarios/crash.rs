//! Crash test: placeholder, see the crash branch.
