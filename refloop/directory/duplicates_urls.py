"""URLs of the duplicates page and merges (included by directory/urls.py)."""

urlpatterns: list = []
