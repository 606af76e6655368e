"""ISO 20022 messages for banks: pain.001 out, pain.002, camt.054 and camt.053 in.
The XSDs in `xsd/` are the ISO 20022 schemas every generated file is checked against."""
