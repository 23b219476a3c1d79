-- Credit events say whether the credits were paid for or granted.
ALTER TABLE events ADD COLUMN credit_source text;
