//! End-to-end tests of the real `voipms-xmpp` binary: the test plays the XMPP server (a scripted
//! peer) and runs mock-voipms as VoIP.ms. One binary for all scenarios (`autotests = false`).

mod scenarios;
mod support;
