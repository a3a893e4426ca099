from django.urls import path

from . import apis

urlpatterns = [
    path("mastery/", apis.MasteryApi.as_view(), name="analytics-mastery"),
    path("history/", apis.HistoryApi.as_view(), name="analytics-history"),
    path("cohort/", apis.CohortApi.as_view(), name="analytics-cohort"),
]
