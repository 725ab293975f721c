from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.apis.pagination import paginated
from annotation.apis.serializers import UserInput, UserOutput
from annotation.selectors.accounts import user_list
from annotation.services.accounts import user_create


class TokenObtainApi(ObtainAuthToken):
    """POST username + password -> {"token": ...}."""


class UserListCreateApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(responses=UserOutput(many=True))
    def get(self, request: Request) -> Response:
        return paginated(request, user_list(), lambda page: UserOutput(page, many=True).data, self)

    @extend_schema(request=UserInput, responses={201: UserOutput})
    def post(self, request: Request) -> Response:
        data = UserInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        user = user_create(
            username=v["username"], password=v["password"], email=v.get("email", ""), is_staff=v.get("is_staff", False)
        )
        return Response(UserOutput(user).data, status=status.HTTP_201_CREATED)
