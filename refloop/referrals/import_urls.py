"""URLs of the bulk referral import pages (included by referrals/urls.py)."""

urlpatterns: list = []
