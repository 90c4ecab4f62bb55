"""cubegw.record: the value classes' construction, equality, repr and immutability."""

from twisted.trial.unittest import SynchronousTestCase

from cubegw.record import FrozenRecordError, MutableRecord, Record, field, fields, replace


class Point(Record):
    x: int
    y: int = 0
    tags: list = field(default_factory=list, compare=False, repr=False)


class Checked(Record):
    value: int

    def __post_init__(self):
        if self.value < 0:
            raise ValueError("negative")
        object.__setattr__(self, "value", int(self.value))


class Named:
    def describe(self):
        return f"named {self.name}"


class Labelled(Record, Named):
    name: str
    extra: str = ""


class Point3(Point):
    z: int = 0


class Counter(MutableRecord):
    name: str
    hits: int = 0


class RecordTests(SynchronousTestCase):
    def test_keyword_positional_defaults(self):
        """Fields are set by keyword or position, in order; defaults fill the rest and
        a factory gives each instance its own value."""
        a, b = Point(1), Point(y=2, x=1)
        self.assertEqual((a.x, a.y, b.x, b.y), (1, 0, 1, 2))
        self.assertEqual(Point(3, 4).y, 4)
        self.assertIsNot(a.tags, b.tags)
        self.assertEqual(Point.y, 0)
        self.assertFalse(hasattr(Point, "tags"))

    def test_wrong_arguments(self):
        """A missing, unknown, repeated or surplus argument is a TypeError."""
        self.assertRaises(TypeError, Point)
        self.assertRaises(TypeError, Point, 1, z=3)
        self.assertRaises(TypeError, Point, 1, x=1)
        self.assertRaises(TypeError, Point, 1, 2, [], 4)

    def test_equality_and_hash(self):
        """Equal when of the same class with equal compared fields; the hash follows."""
        self.assertEqual(Point(1, 2, ["a"]), Point(1, 2, ["b"]))
        self.assertEqual(hash(Point(1, 2, ["a"])), hash(Point(1, 2)))
        self.assertNotEqual(Point(1, 2), Point(1, 3))
        self.assertNotEqual(Point(1, 2), Point3(1, 2))
        self.assertNotEqual(Point(1, 2), (1, 2))

    def test_repr(self):
        """The repr names the class and each shown field, as a dataclass's does."""
        self.assertEqual(repr(Point(1, 2)), "Point(x=1, y=2)")
        self.assertEqual(repr(Point3(1, 2, z=5)), "Point3(x=1, y=2, z=5)")

    def test_frozen(self):
        """Fields cannot be assigned or deleted."""
        p = Point(1)
        self.assertRaises(FrozenRecordError, setattr, p, "x", 2)
        self.assertRaises(FrozenRecordError, delattr, p, "x")
        self.assertRaises(AttributeError, setattr, p, "new", 1)
        self.assertEqual(p.x, 1)

    def test_post_init(self):
        """``__post_init__`` runs after the fields are set, at construction and replace."""
        self.assertRaises(ValueError, Checked, -1)
        self.assertEqual(Checked(True).value, 1)
        self.assertRaises(ValueError, replace, Checked(1), value=-2)

    def test_fields_and_replace(self):
        """``fields`` lists the table in order (inherited first); ``replace`` copies
        with changes and refuses an unknown field."""
        self.assertEqual([f.name for f in fields(Point3)], ["x", "y", "tags", "z"])
        self.assertEqual(fields(Point(1)), Point.FIELDS)
        self.assertIs(fields(Point)[0].type, int)
        self.assertEqual(replace(Point3(1, 2, z=3), y=7), Point3(1, 7, z=3))
        self.assertRaises(TypeError, replace, Point(1), w=1)

    def test_mixin_base(self):
        """A Record may also derive from a plain class, whose methods it keeps."""
        self.assertEqual(Labelled("a").describe(), "named a")
        self.assertEqual(fields(Labelled)[1].default, "")

    def test_mutable(self):
        """A MutableRecord's fields may be assigned; it compares by value and, as a
        dataclass that is not frozen, has no hash."""
        c = Counter("a")
        c.hits += 2
        self.assertEqual(c, Counter("a", 2))
        self.assertEqual(repr(c), "Counter(name='a', hits=2)")
        self.assertRaises(TypeError, hash, c)
        del c.hits
        self.assertEqual(c.hits, 0)                  # back to the class default
