"""HL7 v2 for refloop: referrals in (REF^I12, the 360X OMG^O19), acknowledgements, status out (RRI^I12,
OSU^O51, SIU^S12/S13/S15/S26), over MLLP or from files.

- parse.py: bytes -> segments, with the character set of MSH-18, escape sequences and repetitions;
- problems.py: what is wrong with a message, named by segment, field and component (becomes an ERR segment);
- ack.py: the ACK answered for each message;
- mapping.py: a referral request read out of REF^I12 or OMG^O19;
- inbound.py: one message received: validated, recognised if resent, queued and answered (the listener); made a
  referral by the worker's drain, several per transaction;
- outbound.py / sending.py: the status messages written with each step of the loop and sent once by the worker;
- mllp.py: the MLLP listener and client.
"""
