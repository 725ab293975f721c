from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.apis.pagination import PageNumberPagination
from annotation.apis.serializers import MemberInput, MemberOutput, MemberRoleInput, ProjectInput, ProjectOutput
from annotation.exceptions import NotFound
from annotation.models import Membership
from annotation.permissions import MANAGE, VIEW, project_for_user
from annotation.selectors.items import project_list_for_user
from annotation.services import projects as project_services


class ProjectListCreateApi(APIView):
    @extend_schema(responses=ProjectOutput(many=True))
    def get(self, request: Request) -> Response:
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(project_list_for_user(user=request.user), request, view=self)
        return paginator.get_paginated_response(ProjectOutput(page, many=True).data)

    @extend_schema(request=ProjectInput, responses={201: ProjectOutput})
    def post(self, request: Request) -> Response:
        data = ProjectInput(data=request.data)
        data.is_valid(raise_exception=True)
        project = project_services.project_create(created_by=request.user, **data.validated_data)
        project = project_list_for_user(user=request.user).get(pk=project.pk)
        return Response(ProjectOutput(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(APIView):
    @extend_schema(responses=ProjectOutput)
    def get(self, request: Request, pk: int) -> Response:
        project_for_user(user=request.user, project_id=pk, capability=VIEW)
        return Response(ProjectOutput(project_list_for_user(user=request.user).get(pk=pk)).data)

    @extend_schema(request=ProjectInput(partial=True), responses=ProjectOutput)
    def patch(self, request: Request, pk: int) -> Response:
        project = project_for_user(user=request.user, project_id=pk, capability=MANAGE)
        data = ProjectInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        project_services.project_update(project=project, **data.validated_data)
        return Response(ProjectOutput(project_list_for_user(user=request.user).get(pk=pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        project = project_for_user(user=request.user, project_id=pk, capability=MANAGE)
        project_services.project_delete(project=project)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectMembersApi(APIView):
    @extend_schema(responses=MemberOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        project = project_for_user(user=request.user, project_id=pk, capability=MANAGE)
        paginator = PageNumberPagination()
        members = Membership.objects.filter(project=project).select_related("user").order_by("id")
        page = paginator.paginate_queryset(members, request, view=self)
        return paginator.get_paginated_response(MemberOutput(page, many=True).data)

    @extend_schema(request=MemberInput, responses={201: MemberOutput})
    def post(self, request: Request, pk: int) -> Response:
        project = project_for_user(user=request.user, project_id=pk, capability=MANAGE)
        data = MemberInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = project_services.membership_set(project=project, **data.validated_data)
        return Response(MemberOutput(membership).data, status=status.HTTP_201_CREATED)


class ProjectMemberDetailApi(APIView):
    @extend_schema(request=MemberRoleInput, responses=MemberOutput)
    def patch(self, request: Request, pk: int, user_id: int) -> Response:
        project = project_for_user(user=request.user, project_id=pk, capability=MANAGE)
        data = MemberRoleInput(data=request.data)
        data.is_valid(raise_exception=True)
        member = Membership.objects.filter(project=project, user_id=user_id).select_related("user").first()
        if member is None:
            raise NotFound("No such member.")
        membership = project_services.membership_set(
            project=project, username=member.user.username, role=data.validated_data["role"]
        )
        return Response(MemberOutput(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int, user_id: int) -> Response:
        project = project_for_user(user=request.user, project_id=pk, capability=MANAGE)
        project_services.membership_remove(project=project, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
