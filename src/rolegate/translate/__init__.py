"""Translation between the caller's API and an upstream's, for chat-style calls: pure functions
from one wire format's JSON to another's. A field that has no counterpart is refused with 400
naming it (`Untranslatable`), never dropped."""
