"""The syslog.* fields of sysdig 0.29.3: the message of a write to /dev/log, decoded.

They have a value only on the write exits query.syslog decodes (null everywhere else, enter
events of those writes included), as sysdig forgets a decoded message at the next event.
"""
import numpy as np
import polars as pl

from scaptool.scap.columns import constant_series

from . import syslog
from .field_catalog import field


def _present(data, arg):
    # only the decoded write exits can hold a value: lets a filter skip every other event
    return syslog.decoded_exit_types()[np.asarray(data.headers.type)]


def _syslog_field(name, type_, kind, description, dtype, values):
    """A field whose value on each decoded write is values(decoded frame)."""
    def compute(data, arg):
        frame = syslog.decoded(data.capture)
        out = constant_series(None, len(data), dtype, name)
        if len(frame):
            out = out.scatter(frame["row"].to_numpy(), values(frame).cast(dtype))
        return out
    field(name, type_, kind, description, present=_present)(compute)


def _names(column, name_of):
    # a facility without a name reads as the text <NA>, as in sysdig (a value, not a null)
    return lambda frame: frame[column].map_elements(name_of, return_dtype=pl.String)


_syslog_field("syslog.facility", "UINT32", "uint",
              "the facility of a message written to syslog (PRI >> 3; 0-23 in practice)",
              pl.UInt32, lambda frame: frame["facility"])
_syslog_field("syslog.facility.str", "CHARBUF", "string",
              "the facility of a message written to syslog, by name (kern, user, mail, "
              "daemon ... local7)", pl.String, _names("facility", syslog.facility_name))
_syslog_field("syslog.severity", "UINT32", "uint",
              "the severity of a message written to syslog (PRI & 7: 0 emerg ... 7 debug)",
              pl.UInt32, lambda frame: frame["severity"])
_syslog_field("syslog.severity.str", "CHARBUF", "string",
              "the severity of a message written to syslog, by name: emerg, alert, crit, err, "
              "warn, notice, info or debug", pl.String, _names("severity", syslog.severity_name))
_syslog_field("syslog.message", "CHARBUF", "string",
              "the text written to syslog after its <PRI> (up to a NUL byte)",
              pl.String, lambda frame: frame["message"])
