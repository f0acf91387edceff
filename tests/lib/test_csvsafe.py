import csv
import io

from refloop.lib.csvsafe import csv_text, neutralize


def test_formula_triggers_are_made_plain_text():
    for dangerous in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"]:
        assert neutralize(dangerous) == "'" + dangerous
    assert neutralize("Dr. Smith") == "Dr. Smith"
    assert neutralize(None) == ""


def test_csv_text_round_trips_commas_and_quotes():
    text = csv_text(["a", "b"], [["x, y", 'say "hi"'], ["=cmd", 3]])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["a", "b"], ["x, y", 'say "hi"'], ["'=cmd", "3"]]
