import unittest

from protocol import answer


class AnswerTest(unittest.TestCase):
    def test_reverses_characters_and_quits(self):
        self.assertEqual(answer("héllo"), "olléh")
        self.assertEqual(answer(""), "")
        self.assertIsNone(answer("QUIT"))


if __name__ == "__main__":
    unittest.main()
