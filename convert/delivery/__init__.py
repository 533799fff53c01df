"""Getting a written book to its reader: checked for Send to Kindle, mailed by SMTP."""
