import pathlib
import unittest


class ReportTest(unittest.TestCase):
    def test_report_has_every_section(self) -> None:
        report = pathlib.Path("REPORT.txt").read_text()
        self.assertIn("line 3: 4 words", report)
        self.assertIn("longest: jumps", report)
        self.assertIn(" 5 ###", report)


if __name__ == "__main__":
    unittest.main()
