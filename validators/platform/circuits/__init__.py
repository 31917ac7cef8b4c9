"""Platform rules of the billing frameworks (RLS-P12..RLS-P20), one module per rule (docs/billing-frameworks.md).

- the framework itself: RLS-P12 (BT-23 names no framework, stage DOCUMENT), RLS-P13 (the recipient does not
  accept it, stage DIRECTORY);
- the circuit's actors (BG-24, stage DOCUMENT): RLS-P14 (no validator), RLS-P15 (no MOE);
- the association (BT-25, stage STORE, `validators.association`): RLS-P16 to RLS-P20.

Same shape as every rule module (`validators.platform`): ``RULE`` and ``check(ctx)``.
"""
