"""FHIR R4 at /fhir/: referral intake (ServiceRequest, transaction and BSeR message Bundles), the referral's
progress as a BSeR Task, the consult report as a DocumentReference, and a CapabilityStatement that lists exactly
what these views do. Mapping in is intake.py, mapping out is resources.py; views.py only translates."""
