import unittest

from shop import auth
from shop.api import list_orders
from shop.pricing import apply_discount
from shop.text import normalize


class ShopTests(unittest.TestCase):
    def setUp(self) -> None:
        auth.API_KEYS.clear()
        auth.API_KEYS["k-123"] = "acme"

    def test_normalize(self) -> None:
        self.assertEqual(normalize("  a   b "), "a b")

    def test_discount_is_whole_cents(self) -> None:
        self.assertEqual(apply_discount(999, 10), 899)
        self.assertIsInstance(apply_discount(999, 10), int)

    def test_orders_need_a_key(self) -> None:
        self.assertEqual(list_orders({})[0], 401)
        self.assertEqual(list_orders({"Authorization": "Bearer k-123"}), (200, "orders of acme"))


if __name__ == "__main__":
    unittest.main()
