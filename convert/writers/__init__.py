"""Writers: read the model, never change it. Markdown now; feeds and EPUB join here."""
